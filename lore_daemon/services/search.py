"""``lore/search``: search the mirror's documents (SPEC §12, §13).

``mode`` null runs hybrid when document vectors exist, else lexical; the result's ``mode`` is
the one that ran. In this version the semantic ranking (``embedding.semantic``) and the fusion
(``embedding.fusion``) are not wired in yet: every request runs the lexical mode, and one that
asked for ``semantic`` or ``hybrid`` gets a warning saying so. Hybrid fuses
``store.read_search.lexical_candidates`` with the semantic list and builds hits with
``store.read_search.build_hits`` (``ranks.semantic`` filled from the semantic list).

Lexical: FTS5 bm25 with the list filters and ``sourceTypes``, hits collapsed to one per entity,
and the entities the query names exactly (``#12``, ``!3``, ``group/proj#12``, a URL) first. Any
text is a valid query.
"""

from __future__ import annotations

import apsw

from lore_daemon.protocol_read import SearchParams, SearchResult
from lore_daemon.services.read_targets import query_references
from lore_daemon.services.runtime import Runtime
from lore_daemon.services.spec import Call, MethodSpec
from lore_daemon.services.targets import LOCAL_READ_ERRORS
from lore_daemon.store.read_filters import entity_filter
from lore_daemon.store.read_search import LexicalSearch, Reference, search_lexical


def _lexical(conn: apsw.Connection, params: SearchParams, references: list[Reference]) -> LexicalSearch:
    f = entity_filter(conn, params)
    return search_lexical(conn, params.query, f, params.source_types, params.limit, references)


async def serve(runtime: Runtime, params: SearchParams, call: Call) -> SearchResult:
    config = runtime.config()
    references = query_references(config, params.query, params.project)
    db = await runtime.database()
    found = await db.read(_lexical, params, references)
    warnings = list(found.warnings)
    if params.mode in ("semantic", "hybrid"):
        warnings.insert(0, f"{params.mode} search is not wired into lore/search in this version; "
                           "ran lexical search instead")
    return SearchResult(mode="lexical", hits=found.hits, has_more=found.has_more, warnings=warnings)


SPEC = MethodSpec(
    name="lore/search",
    summary=(
        "Search the mirror's issue, MR and discussion documents (lexical FTS5 bm25; mode says "
        "which ran) with the lore/list filters and sourceTypes; hits carry their parent entity, a "
        "snippet with matches marked, score and ranks. An exact reference in the query (#12, !3, "
        "group/proj#12, a URL) ranks that entity first. Any text is a valid query. Local only."
    ),
    params_type=SearchParams,
    result_type=SearchResult,
    serve=serve,
    error_codes=LOCAL_READ_ERRORS,
)
