"""Every GitLab-facing method end to end: daemon subprocess ↔ simulator on loopback ↔ SQLite file.

Progress (``lore/progress`` and the ``$/progress`` mirror for client and server tokens), and
cancellation by ``$/cancelRequest``, ``window/workDoneProgress/cancel``, end of input and SIGTERM:
each must leave the ledger row ``cancelled`` and no lock row behind.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcRequestCancelled

from lore_daemon.protocol import SURGICAL_PHASES
from lore_daemon.sim import SimConfig, SimServer
from lore_daemon.store import ledger, locks
from lore_daemon.store.connection import Database
from tests.support.sim import sim_fixture
from tests.support.wait import wait_until_async

from .support import ClientPool, DaemonEnv, LoreTestClient, RawDaemon, rpc

PROJECT = "group/project"
SLOW_ROUTE = r"/discussions"  # dependents only: preflight stays fast, the run then holds the lock


sim = sim_fixture(SimConfig(seed=7, issues=30, mrs=10, notes_per_entity=3), scope="module")


@pytest.fixture
def env(daemon_env: DaemonEnv, sim: SimServer) -> DaemonEnv:
    daemon_env.write_config(base_url=sim.base_url)
    return daemon_env.with_token(sim.token)


@pytest.fixture
def slow_dependents(sim: SimServer) -> Iterator[None]:
    sim.control.set_latency(400, route=SLOW_ROUTE)
    try:
        yield
    finally:
        sim.control.set_latency(0, route=SLOW_ROUTE)


def _phase_events(notes: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(n["phase"], n["event"]) for n in notes if n["event"] in ("begin", "end")]


def _expected_phase_sequence() -> list[tuple[str, str]]:
    return [(phase, event) for phase in SURGICAL_PHASES for event in ("begin", "end")]


def _dependents_begun(client: LoreTestClient) -> Callable[[], bool]:
    return lambda: ("dependents", "begin") in _phase_events(client.lore_progress)


def _store_state(db_path: Path) -> tuple[list[Any], list[Any]]:
    db = Database(db_path)
    db.open()
    try:
        return db.read_sync(lambda c: (ledger.list_runs(c, limit=10), locks.lock_holders(c)))
    finally:
        db.close()


# ------------------------------------------------------------------------------------ methods


async def test_surgical_sync_reports_every_phase_in_order(clients: ClientPool, env: DaemonEnv) -> None:
    client = await clients.start(env)
    result = await rpc(client, "lore/syncSurgical", {"project": PROJECT, "issues": [1, 2], "mrs": [1]})

    assert result["status"] == "succeeded"
    assert result["mode"] == "surgical"
    assert sorted((e["kind"], e["iid"], e["outcome"]) for e in result["entities"]) == [
        ("issue", 1, "ingested"), ("issue", 2, "ingested"), ("mr", 1, "ingested"),
    ]
    assert set(result["stageTimingsMs"]) >= set(SURGICAL_PHASES)
    assert _phase_events(client.lore_progress) == _expected_phase_sequence()
    assert {n["runId"] for n in client.lore_progress} == {result["runId"]}

    runs = (await rpc(client, "lore/syncRuns", {"runId": result["runId"]}))["runs"]
    assert [(r["status"], r["phase"]) for r in runs] == [("succeeded", "done")]
    assert (await rpc(client, "lore/status", {}))["locks"] == []


async def test_progress_is_mirrored_to_a_client_created_token(clients: ClientPool, env: DaemonEnv) -> None:
    client = await clients.start(env)
    client.progress_reports.setdefault("editor-token-1", [])
    params = {"project": PROJECT, "issues": [3], "workDoneToken": "editor-token-1"}

    result = await rpc(client, "lore/syncSurgical", params)

    kinds = [type(v).__name__ for v in client.progress_reports["editor-token-1"]]
    assert kinds[0] == "WorkDoneProgressBegin"
    assert kinds[-1] == "WorkDoneProgressEnd"
    assert set(kinds[1:-1]) == {"WorkDoneProgressReport"}
    assert len(kinds) == len(client.lore_progress) + 2
    assert client.progress_reports["editor-token-1"][-1].message == result["status"]
    assert {n["workDoneToken"] for n in client.lore_progress} == {"editor-token-1"}


async def test_progress_is_mirrored_to_a_server_created_token(clients: ClientPool, env: DaemonEnv) -> None:
    client = await clients.start(env, work_done_progress=True)

    await rpc(client, "lore/syncSurgical", {"project": PROJECT, "mrs": [2]})

    assert len(client.progress_reports) == 1  # created by window/workDoneProgress/create
    (token, reports), = client.progress_reports.items()
    assert isinstance(reports[0], types.WorkDoneProgressBegin) and reports[0].cancellable
    assert isinstance(reports[-1], types.WorkDoneProgressEnd)
    assert all(isinstance(r, types.WorkDoneProgressReport) for r in reports[1:-1])
    assert {n["workDoneToken"] for n in client.lore_progress} == {token}


async def test_preflight_checks_remotely_and_writes_nothing(clients: ClientPool, env: DaemonEnv) -> None:
    client = await clients.start(env)
    result = await rpc(client, "lore/preflight", {"project": PROJECT, "issues": [1, 9999]})

    assert result["ok"] is False
    assert result["auth"]["ok"] is True
    assert {(e["iid"], e["found"]) for e in result["entities"]} == {(1, True), (9999, False)}
    assert [(f["iid"], f["code"]) for f in result["failures"]] == [(9999, "GITLAB_NOT_FOUND")]
    assert (await rpc(client, "lore/syncRuns", {}))["runs"] == []  # not even a ledger row


async def test_target_on_another_host_is_rejected_before_any_request(
    clients: ClientPool, env: DaemonEnv, sim: SimServer
) -> None:
    client = await clients.start(env)
    before = len(sim.control.log())
    with pytest.raises(JsonRpcException) as err:
        await rpc(client, "lore/syncSurgical", {"issueUrls": ["https://elsewhere.example/group/project/-/issues/1"]})
    assert err.value.code == -32602
    assert err.value.data["code"] == "TARGET_HOST_MISMATCH"
    assert len(sim.control.log()) == before


async def test_standard_sync_runs_end_to_end(clients: ClientPool, env: DaemonEnv) -> None:
    client = await clients.start(env)
    result = await rpc(client, "lore/sync", {}, timeout=120)

    assert result["mode"] == "standard"
    assert result["status"] in ("succeeded", "partial")
    assert result["counters"]["issuesIngested"] == 30
    assert result["counters"]["mrsIngested"] == 10
    phases = [p for p, e in _phase_events(client.lore_progress) if e == "begin"]
    assert phases[0] == "ingest"
    runs = (await rpc(client, "lore/syncRuns", {"limit": 1}))["runs"]
    assert runs[0]["runId"] == result["runId"] and runs[0]["mode"] == "standard"


# ------------------------------------------------------------------------------------ cancellation


@pytest.mark.usefixtures("slow_dependents")
async def test_cancel_request_mid_run_ends_cancelled_and_frees_the_lock(
    clients: ClientPool, env: DaemonEnv
) -> None:
    client = await clients.start(env)
    params = {"project": PROJECT, "issues": [4, 5]}
    request = client.protocol.send_request_async("lore/syncSurgical", params, msg_id=77)
    pending = asyncio.ensure_future(request)
    await wait_until_async(_dependents_begun(client), what="the dependents phase to begin")
    assert [lock["name"] for lock in (await rpc(client, "lore/status", {}))["locks"]] == ["sync"]

    client.cancel_request(types.CancelParams(id=77))
    with pytest.raises(JsonRpcRequestCancelled) as err:
        await asyncio.wait_for(pending, 20)
    assert err.value.code == -32800
    assert err.value.data["code"] == "CANCELLED"

    runs = (await rpc(client, "lore/syncRuns", {"limit": 1}))["runs"]
    assert runs[0]["status"] == "cancelled"
    assert runs[0]["cancelledAt"] is not None
    assert (await rpc(client, "lore/status", {}))["locks"] == []


@pytest.mark.usefixtures("slow_dependents")
async def test_work_done_progress_cancel_cancels_the_run(clients: ClientPool, env: DaemonEnv) -> None:
    client = await clients.start(env)
    client.progress_reports.setdefault("bar-1", [])
    params = {"project": PROJECT, "mrs": [3], "workDoneToken": "bar-1"}
    pending = asyncio.ensure_future(client.protocol.send_request_async("lore/syncSurgical", params))
    await wait_until_async(_dependents_begun(client), what="the dependents phase to begin")

    client.window_work_done_progress_cancel(types.WorkDoneProgressCancelParams(token="bar-1"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(pending, 20)
    assert isinstance(client.progress_reports["bar-1"][-1], types.WorkDoneProgressEnd)
    assert client.progress_reports["bar-1"][-1].message == "cancelled"
    runs = (await rpc(client, "lore/syncRuns", {"limit": 1}))["runs"]
    assert runs[0]["status"] == "cancelled"
    assert (await rpc(client, "lore/status", {}))["locks"] == []


def _start_slow_run_raw(daemon: RawDaemon) -> None:
    daemon.initialize()
    daemon.send({"jsonrpc": "2.0", "id": "run", "method": "lore/syncSurgical",
                 "params": {"project": PROJECT, "issues": [6, 7]}})
    deadline = time.monotonic() + 20
    while True:
        note = daemon.read_frame(max(0.01, deadline - time.monotonic()))
        params = note.get("params") or {}
        if note.get("method") != "lore/progress":
            continue
        if (params["phase"], params["event"]) == ("dependents", "begin"):
            return


@pytest.mark.usefixtures("slow_dependents")
@pytest.mark.parametrize("stop", ["eof", "sigterm"])
def test_disconnect_or_sigterm_mid_run_records_cancelled_and_releases_locks(
    env: DaemonEnv, stop: str
) -> None:
    daemon = RawDaemon(env)
    try:
        _start_slow_run_raw(daemon)
        if stop == "eof":
            daemon.close_stdin()
        else:
            daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.close()
    runs, held = _store_state(env.db_path)
    assert [(r.status, r.phase) for r in runs] == [("cancelled", "failed")]
    assert runs[0].failed_phase == "dependents"
    assert runs[0].cancelled_at is not None
    assert held == []
