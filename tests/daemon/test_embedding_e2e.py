"""Embeddings end to end: daemon subprocess ↔ simulator (curated project) ↔ SQLite file.

The daemon loads the real bundled model itself. A note added on GitLab and pulled by a surgical run
has vectors when the run returns, and they find it by meaning; ``lore/status`` reports the
provider, model, dimensions, health and documents with current vectors; a provider that is down is
recorded in the run (``partial``, an executable ``retryEmbedding`` action) and in ``lore/status``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from lore_daemon.embedding.index import VectorIndex
from lore_daemon.embedding.local import LocalProvider
from lore_daemon.embedding.semantic import rank_vector
from lore_daemon.sim import SimServer
from lore_daemon.store.connection import open_connection
from lore_daemon.store.vectors import VectorKey
from tests.bench._corpus import CORPUS_ONLY

from .support import ClientPool, DaemonEnv, rpc

PROJECT = "acme/brightday"
NOTE = "Since last Tuesday the agenda panel on my launcher stays frozen whenever the handset idles overnight."
PARAPHRASE = "home screen calendar box stuck after the device sleeps all night"


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(CORPUS_ONLY) as server:
        yield server


async def test_a_note_pulled_by_a_surgical_run_is_findable_by_meaning_right_after(
    clients: ClientPool, daemon_env: DaemonEnv, sim: SimServer, local_model: LocalProvider
) -> None:
    daemon_env.write_config(base_url=sim.base_url, projects=(PROJECT,), embedding='provider = "local"')
    client = await clients.start(daemon_env.with_token(sim.token))
    params = {"project": PROJECT, "issues": list(range(20, 31))}
    first = await rpc(client, "lore/syncSurgical", params, timeout=120)
    assert first["status"] == "succeeded", first
    assert first["counters"]["embedded"] == first["counters"]["embedTotal"] > 11

    sim.control.mutate("add_note", project=PROJECT, kind="issue", iid=28, body=NOTE)
    second = await rpc(client, "lore/syncSurgical", {"project": PROJECT, "issues": [28]}, timeout=120)
    assert second["status"] == "succeeded" and second["counters"]["embedded"] >= 1
    run = (await rpc(client, "lore/syncRuns", {"runId": second["runId"]}))["runs"][0]
    embedded_now = run["surgicalSummary"]["embedDocumentIds"]

    conn = open_connection(daemon_env.db_path, readonly=True)
    try:
        (note_doc,) = [
            row[0] for row in conn.execute(
                "SELECT d.id FROM documents AS d JOIN discussions AS x ON d.source_id = x.id"
                " JOIN notes AS n ON n.discussion_id = x.id"
                " WHERE d.source_type = 'discussion' AND n.body = ?",
                (NOTE,),
            )
        ]
        assert note_doc in embedded_now
        index = VectorIndex(VectorKey(local_model.model_key, 384, "v1:800:120"))
        hits = rank_vector(conn, index=index, query=local_model.embed([PARAPHRASE], kind="query")[0], limit=3)
    finally:
        conn.close()
    assert hits[0].document_id == note_doc, "the new note is the nearest document to a paraphrase of it"

    status = await rpc(client, "lore/status", {})
    embedding = status["embedding"]
    described = (embedding["provider"], embedding["model"], embedding["dimensions"])
    assert described == ("local", "all-MiniLM-L6-v2", 384)
    assert embedding["state"] == "ready" and embedding["error"] is None
    assert embedding["modelKey"] == local_model.model_key
    assert embedding["currentDocuments"] == embedding["documents"] > 11 and embedding["pendingDocuments"] == 0
    assert status["config"]["embedding"]["provider"] == "local"


async def test_a_provider_that_is_down_is_recorded_in_the_run_and_in_status(
    clients: ClientPool, daemon_env: DaemonEnv, sim: SimServer
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    daemon_env.write_config(
        base_url=sim.base_url, projects=(PROJECT,),
        embedding=(
            f'provider = "openai"\nmodel = "m"\nbase_url = "http://127.0.0.1:{port}/v1"\ntimeout_ms = 300'
        ),
    )
    client = await clients.start(daemon_env.with_token(sim.token))
    result = await rpc(client, "lore/syncSurgical", {"project": PROJECT, "mrs": [3]}, timeout=60)
    assert result["status"] == "partial"
    assert [(f["kind"], f["iid"], f["stage"], f["code"]) for f in result["entityFailures"]] == [
        ("mr", 3, "embed", "EMBEDDING_UNAVAILABLE")
    ]
    (action,) = [a for a in result["recoveryActions"] if a["kind"] == "retryEmbedding"]
    assert action["request"] == {"method": "lore/sync", "params": {"projects": [PROJECT]}}
    status = (await rpc(client, "lore/status", {}))["embedding"]
    assert status["state"] == "unavailable" and status["error"]["code"] == "EMBEDDING_UNAVAILABLE"
    assert status["currentDocuments"] == 0 and status["pendingDocuments"] == status["documents"] > 0
    runs = (await rpc(client, "lore/syncRuns", {"runId": result["runId"]}))["runs"]
    assert runs[0]["status"] == "partial" and runs[0]["suggestedRetry"]["kind"] == "retryEmbedding"
