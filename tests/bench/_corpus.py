"""The curated simulator project mirrored into a real SQLite file, and its query set.

Shared by tests/sim/test_corpus.py and the search benchmarks: ``mirror_corpus`` runs a real
standard sync of ``acme/brightday`` against a simulator started with ``corpus=True``;
``entity_documents`` maps an expected entity ("#12", "!3") to its documents (its own and its
discussions'); ``shared_terms`` says which FTS5 terms a query shares with documents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import apsw

from lore_daemon import protocol
from lore_daemon.embedding.provider import Provider
from lore_daemon.engine import Engine
from lore_daemon.sim import SimConfig, SimServer
from lore_daemon.sim.corpus import CORPUS_PROJECT_PATH
from lore_daemon.sync.standard import run_standard_sync
from tests.support.config import EMBEDDING_OFF, TEST_SYNC, write_config
from tests.support.engine import build_engine

QUERIES = Path(__file__).resolve().parent / "data" / "search_queries.json"
CORPUS_ONLY = SimConfig(seed=7, issues=0, mrs=0, other_issues=0, other_mrs=0, corpus=True)
TOKEN_ENV = "LORE_CORPUS_TOKEN"


@dataclass(frozen=True)
class Query:
    type: str
    text: str
    expected: tuple[str, ...]  # "#12" (issue) or "!3" (MR) of the curated project


def load_queries(base_url: str = "http://gitlab.invalid") -> list[Query]:
    data = json.loads(QUERIES.read_text())
    return [
        Query(q["type"], q["query"].replace("{base_url}", base_url), tuple(q["expected"]))
        for q in data["queries"]
    ]


def build_corpus_engine(
    folder: Path, sim: SimServer, *, embedding: str = EMBEDDING_OFF, provider: Provider | None = None
) -> Engine:
    """An engine mirroring the curated project into ``folder/lore.db``, as the daemon builds one;
    ``provider`` hands in an already loaded model."""
    env = {TOKEN_ENV: sim.token, "HOME": str(folder)}
    path = write_config(
        folder, sim.base_url, token_env=TOKEN_ENV, projects=(CORPUS_PROJECT_PATH,),
        db_path=folder / "lore.db", sync=TEST_SYNC, embedding=embedding,
    )
    return build_engine(path, env, retry=None, provider=provider)


async def mirror_corpus(engine: Engine, *, no_embed: bool = False) -> protocol.SyncResult:
    result = await run_standard_sync(engine, protocol.SyncParams(no_embed=no_embed))
    assert result.status == "succeeded", result
    return result


_ENTITY_DOCS = """
SELECT d.id FROM documents AS d
JOIN {table} AS e ON d.source_type = '{source}' AND d.source_id = e.gitlab_id
JOIN projects AS p ON p.gitlab_id = e.project_id
WHERE p.path_with_namespace = ? AND e.iid = ?
UNION
SELECT d.id FROM documents AS d
JOIN discussions AS x ON d.source_type = 'discussion' AND d.source_id = x.id
JOIN {table} AS e ON x.noteable_type = '{source}' AND x.noteable_id = e.gitlab_id
JOIN projects AS p ON p.gitlab_id = e.project_id
WHERE p.path_with_namespace = ? AND e.iid = ?
"""


def entity_documents(conn: apsw.Connection, ref: str, project: str = CORPUS_PROJECT_PATH) -> set[int]:
    """The documents of "#12" / "!3": the entity's own and its discussions'."""
    table, source = ("issues", "issue") if ref.startswith("#") else ("merge_requests", "merge_request")
    iid = int(ref[1:])
    sql = _ENTITY_DOCS.format(table=table, source=source)
    return {row[0] for row in conn.execute(sql, (project, iid, project, iid))}


def query_terms(conn: apsw.Connection, text: str) -> set[str]:
    """The FTS5 terms (porter, unicode61, as documents_fts indexes) of ``text``."""
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.q USING fts5 (t, tokenize = 'porter unicode61')")
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.qv USING fts5vocab (q, 'row')")
    conn.execute("DELETE FROM temp.q")
    conn.execute("INSERT INTO temp.q (t) VALUES (?)", (text,))
    return {row[0] for row in conn.execute("SELECT term FROM temp.qv")}


def shared_terms(conn: apsw.Connection, text: str, doc_ids: set[int]) -> set[str]:
    """Terms of ``text`` that occur in any of ``doc_ids`` (title or content)."""
    shared = set()
    for term in query_terms(conn, text):
        match = '"' + term.replace('"', '""') + '"'
        for (rowid,) in conn.execute("SELECT rowid FROM documents_fts WHERE documents_fts MATCH ?", (match,)):
            if rowid in doc_ids:
                shared.add(term)
                break
    return shared
