"""``lore/search`` over the mirror's documents (SPEC §12): candidates, references, hits.

Three parts, so a hybrid mode can fuse lists before hits are built:

* :func:`lexical_candidates` — FTS5 ``bm25`` over ``documents_fts``: document ids in rank order
  with their bm25 (lower is better, as FTS5 gives it), every filter applied in SQL;
* :func:`reference_hits` — the entities the query names exactly (``#12``, a URL...), filtered
  the same way, each with its own document;
* :func:`build_hits` — documents (any order, any source) → hits with their parent entity, a
  snippet and the ranks given.

:func:`search_lexical` is the lexical mode end to end: references first, then the FTS5 ranking.
A document's parent is the entity itself for an issue or MR document, and the discussion's
noteable for a discussion document.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import apsw
import msgspec

from lore_daemon.protocol import EntityKind
from lore_daemon.protocol_read import SearchHit, SearchRanks
from lore_daemon.store.fts_query import FtsQuery, Tokenize, fts_query
from lore_daemon.store.read_common import ENTITY_TYPE_KIND, KIND_ENTITY_TYPE, project_ids, snapshot, stamp
from lore_daemon.store.read_filters import EntityFilter, conditions, table_of
from lore_daemon.store.snippet import snippet

# The tokenizer documents_fts was created with (schema/sql/0003_documents.sql); a test checks.
FTS_TOKENIZER = ("porter", ["unicode61"])
BM25_WEIGHTS = (2.0, 1.0)  # title, content (the content repeats the title on its first line)
# Hits are collapsed to one per parent entity (its best document): an issue's discussions repeat
# its title, so one matching title would otherwise fill a page with that threads. The
# candidate list is over-fetched this many times the limit to fill the page with distinct parents.
COLLAPSE_FETCH = 5
_ALL_SOURCES = ("issue", "merge_request", "discussion")
# A document's parent entity: itself, or the discussion's noteable.
_PARENT_TYPE = "coalesce(disc.noteable_type, d.source_type)"
_PARENT_ID = "coalesce(disc.noteable_id, d.source_id)"
_DISCUSSION_JOIN = " LEFT JOIN discussions AS disc ON d.source_type = 'discussion' AND disc.id = d.source_id"
# The snippet is cut from the text the index holds (documents_indexed, migration 0011): for a
# discussion, its notes without the header that repeats the parent's title.
_DOCUMENTS = (
    "SELECT d.id, d.source_type, d.source_id, d.title, x.content, d.url, "  # noqa: S608 (constants)
    f"{_PARENT_TYPE}, {_PARENT_ID} FROM documents AS d JOIN documents_indexed AS x ON x.id = d.id"
    f"{_DISCUSSION_JOIN} WHERE d.id IN (SELECT value FROM json_each(?))"
)
_DOCUMENT_PARENTS = (
    f"SELECT d.id, {_PARENT_TYPE}, {_PARENT_ID} FROM documents AS d{_DISCUSSION_JOIN} "  # noqa: S608
    "WHERE d.id IN (SELECT value FROM json_each(?))"
)
_PARENTS = """
SELECT e.gitlab_id, e.iid, p.path_with_namespace, e.title, e.state, e.updated_at, e.web_url
FROM {table} AS e JOIN projects AS p ON p.gitlab_id = e.project_id
WHERE e.gitlab_id IN (SELECT value FROM json_each(?))
"""


@dataclass(frozen=True, slots=True)
class Candidate:
    document_id: int
    bm25: float


@dataclass(frozen=True, slots=True)
class Reference:
    """An entity the query names: ``project`` None means any mirrored project."""

    project: str | None
    kind: EntityKind
    iid: int


@dataclass(slots=True)
class LexicalSearch:
    hits: list[SearchHit]
    has_more: bool
    warnings: list[str] = field(default_factory=list)


def tokenizers(conn: apsw.Connection) -> tuple[Tokenize, Tokenize]:
    """(query, document) tokenizing functions of the index's tokenizer, on this connection."""
    tok = conn.fts5_tokenizer(*FTS_TOKENIZER)

    def query(raw: bytes) -> Sequence[tuple[int, int, str]]:
        return tok(raw, apsw.FTS5_TOKENIZE_QUERY, None)  # type: ignore[return-value]

    def document(raw: bytes) -> Sequence[tuple[int, int, str]]:
        return tok(raw, apsw.FTS5_TOKENIZE_DOCUMENT, None)  # type: ignore[return-value]

    return query, document


def _parent_filter(f: EntityFilter) -> tuple[str, list[Any]]:
    """The entity filters on each document's parent; empty when only the project is filtered
    (documents carry their project id) or nothing is."""
    rest = dataclasses.replace(f, project_ids=None)
    if rest == EntityFilter():
        return "", []
    arms: list[str] = []
    values: list[Any] = []
    for kind in rest.kinds:
        terms, arm_values = conditions(rest, kind)
        terms.insert(0, f"e.gitlab_id = {_PARENT_ID}")
        arms.append(
            f"({_PARENT_TYPE} = '{KIND_ENTITY_TYPE[kind]}' AND EXISTS (SELECT 1 FROM {table_of(kind)} AS e "  # noqa: S608
            f"WHERE {' AND '.join(terms)}))"
        )
        values.extend(arm_values)
    return "(" + " OR ".join(arms) + ")", values


def lexical_candidates(
    conn: apsw.Connection,
    expression: str,
    f: EntityFilter,
    source_types: Sequence[str],
    limit: int,
) -> list[Candidate]:
    """Up to ``limit`` documents matching the FTS5 ``expression`` under the filters, best first.

    The fusion of a hybrid search calls this for its lexical list. ``source_types`` empty means
    every kind of document. ``bm25`` is FTS5's (negative; lower ranks higher).
    """
    if f.matches_nothing:
        return []
    types = [t for t in dict.fromkeys(source_types) if t in _ALL_SOURCES] or list(_ALL_SOURCES)
    where = ["documents_fts MATCH ?"]
    values: list[Any] = [expression]
    joins = ""
    parent_sql, parent_values = _parent_filter(f)
    if len(types) < len(_ALL_SOURCES) or f.project_ids is not None or parent_sql:
        joins = " JOIN documents AS d ON d.id = documents_fts.rowid"
        if len(types) < len(_ALL_SOURCES):
            where.append(f"d.source_type IN ({', '.join('?' for _ in types)})")
            values.extend(types)
        if f.project_ids is not None:
            where.append(f"d.project_id IN ({', '.join('?' for _ in f.project_ids)})")
            values.extend(f.project_ids)
        if parent_sql:
            joins += _DISCUSSION_JOIN
            where.append(parent_sql)
            values.extend(parent_values)
    weights = ", ".join(str(w) for w in BM25_WEIGHTS)
    sql = (
        f"SELECT documents_fts.rowid, bm25(documents_fts, {weights}) AS score FROM documents_fts{joins} "  # noqa: S608
        f"WHERE {' AND '.join(where)} ORDER BY score LIMIT ?"
    )
    return [Candidate(int(r[0]), float(r[1])) for r in conn.execute(sql, (*values, limit))]


@dataclass(frozen=True, slots=True)
class HitSource:
    """What a hit is built from: a document, or (for a named entity without one yet) the entity."""

    document_id: int | None
    entity: tuple[str, int] | None = None  # (entity type, GitLab id) of a named entity
    exact: bool = False


def reference_hits(
    conn: apsw.Connection, references: Sequence[Reference], f: EntityFilter, source_types: Sequence[str]
) -> list[HitSource]:
    """The named entities that exist in the mirror and pass the filters, in the order named (each
    once), each with its own document."""
    found: dict[tuple[str, int], int | None] = {}
    for ref in references:
        entity_type = KIND_ENTITY_TYPE[ref.kind]
        if (source_types and entity_type not in source_types) or f.matches_nothing:
            continue
        if f.kind is not None and f.kind != ref.kind:
            continue
        terms, values = conditions(f, ref.kind)
        terms.append("e.iid = ?")
        values.append(ref.iid)
        if ref.project is not None:
            ids = project_ids(conn, ref.project)
            if not ids:
                continue
            terms.append(f"e.project_id IN ({', '.join('?' for _ in ids)})")
            values.extend(ids)
        sql = (
            f"SELECT e.gitlab_id, d.id FROM {table_of(ref.kind)} AS e LEFT JOIN documents AS d "  # noqa: S608
            f"ON d.source_type = ? AND d.source_id = e.gitlab_id WHERE {' AND '.join(terms)} "
            "ORDER BY e.project_id"
        )
        for gitlab_id, document_id in conn.execute(sql, (entity_type, *values)):
            found.setdefault((entity_type, int(gitlab_id)), None if document_id is None else int(document_id))
    return [HitSource(document_id, entity, exact=True) for entity, document_id in found.items()]


def _parents(conn: apsw.Connection, keys: set[tuple[str, int]]) -> dict[tuple[str, int], Sequence[Any]]:
    out: dict[tuple[str, int], Sequence[Any]] = {}
    for entity_type, kind in ENTITY_TYPE_KIND.items():
        ids = sorted(i for t, i in keys if t == entity_type)
        if ids:
            sql = _PARENTS.format(table=table_of(kind))  # type: ignore[arg-type]
            for row in conn.execute(sql, (msgspec.json.encode(ids).decode(),)):
                out[(entity_type, int(row[0]))] = row
    return out


def build_hits(
    conn: apsw.Connection,
    sources: Sequence[HitSource],
    scores: dict[int, float],
    ranks: dict[int, SearchRanks],
    query: FtsQuery,
    tokenize_document: Tokenize,
) -> list[SearchHit]:
    """Hits in the order given, each with its parent entity and a snippet marking ``query``'s
    terms. A source whose document or parent is gone is left out."""
    ids = [s.document_id for s in sources if s.document_id is not None]
    rows = {int(r[0]): r for r in conn.execute(_DOCUMENTS, (msgspec.json.encode(ids).decode(),))}
    keys: list[tuple[str, int] | None] = []
    for source in sources:
        doc = rows.get(source.document_id) if source.document_id is not None else None
        keys.append((str(doc[6]), int(doc[7])) if doc is not None else source.entity)
    parents = _parents(conn, {key for key in keys if key is not None})
    hits: list[SearchHit] = []
    for source, key in zip(sources, keys, strict=True):
        parent = parents.get(key) if key is not None else None
        if parent is None or key is None:
            continue
        _, iid, project, title, state, updated, web_url = parent
        doc = rows.get(source.document_id) if source.document_id is not None else None
        document_id = source.document_id if doc is not None else None
        hits.append(SearchHit(
            source_type=str(doc[1]) if doc is not None else key[0],  # type: ignore[arg-type]
            source_id=int(doc[2]) if doc is not None else key[1],
            document_id=document_id,
            kind=ENTITY_TYPE_KIND[key[0]],  # type: ignore[arg-type]
            iid=int(iid),
            project=str(project),
            title=str(doc[3]) if doc is not None else str(title),
            state=str(state),
            snippet=snippet(str(doc[4]) if doc is not None else str(title), query.terms, query.prefixes,
                            tokenize_document),
            score=scores.get(document_id, 0.0) if document_id is not None else 0.0,
            ranks=ranks.get(document_id, SearchRanks()) if document_id is not None else SearchRanks(),
            web_url=(doc[5] if doc is not None else None) or str(web_url),
            updated_at=stamp(updated),
            exact_reference=source.exact,
        ))
    return hits


def search_lexical(
    conn: apsw.Connection,
    text: str,
    f: EntityFilter,
    source_types: Sequence[str],
    limit: int,
    references: Sequence[Reference] = (),
) -> LexicalSearch:
    """The lexical mode: named entities first, then documents by bm25; ``limit`` hits in all."""
    with snapshot(conn):
        tokenize_query, tokenize_document = tokenizers(conn)
        query = fts_query(text, tokenize_query)
        warnings = list(query.warnings)
        named = reference_hits(conn, references, f, source_types)[:limit]
        candidates: list[Candidate] = []
        fetch = limit * COLLAPSE_FETCH + 1
        if query.expression is not None:
            candidates = lexical_candidates(conn, query.expression, f, source_types, fetch)
            if not candidates and query.fallback is not None and not named:  # a named entity answers it
                candidates = lexical_candidates(conn, query.fallback, f, source_types, fetch)
                if candidates:
                    warnings.append("no document matched every word; showing documents that match any")
        taken = {s.entity for s in named}
        room = limit - len(named)
        best: list[HitSource] = []
        parents = _document_parents(conn, [c.document_id for c in candidates])
        excluded = _excluded_parents(conn, query, parents.values(), tokenize_document)
        for candidate in candidates:
            parent = parents.get(candidate.document_id)
            if parent is None or parent in taken or parent in excluded:
                continue
            taken.add(parent)
            best.append(HitSource(candidate.document_id))
        hits = build_hits(
            conn, named + best[:room],
            scores={c.document_id: -c.bm25 for c in candidates},
            ranks={c.document_id: SearchRanks(lexical=i + 1) for i, c in enumerate(candidates)},
            query=query, tokenize_document=tokenize_document,
        )
        has_more = len(best) > room or len(candidates) == fetch
        return LexicalSearch(hits=hits, has_more=has_more, warnings=warnings)


def _excluded_parents(
    conn: apsw.Connection, query: FtsQuery, parents: Iterable[tuple[str, int]], tokenize: Tokenize
) -> set[tuple[str, int]]:
    """Entities whose title holds an excluded word (``-timeout``). The index matches a discussion
    by its notes only (migration 0011), so a thread of an issue titled "... timeout ..." would
    otherwise survive ``-timeout`` under a title that shows the word."""
    if not query.excluded:
        return set()
    out: set[tuple[str, int]] = set()
    for key, row in _parents(conn, set(parents)).items():
        title = [t for _, _, t in tokenize(str(row[3]).encode("utf-8", "replace"))]
        for words in query.excluded:
            n = len(words)
            if any(tuple(title[i:i + n]) == words for i in range(len(title) - n + 1)):
                out.add(key)
                break
    return out


def _document_parents(conn: apsw.Connection, ids: Sequence[int]) -> dict[int, tuple[str, int]]:
    """Each document's parent entity as (entity type, GitLab id)."""
    if not ids:
        return {}
    rows = conn.execute(_DOCUMENT_PARENTS, (msgspec.json.encode(list(ids)).decode(),))
    return {int(r[0]): (str(r[1]), int(r[2])) for r in rows}
