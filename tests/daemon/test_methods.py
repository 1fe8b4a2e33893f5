"""lore/status, lore/robotDocs and lore/syncRuns end to end, over pytest-lsp and real stdio."""

from __future__ import annotations

import json
import time
import typing
from pathlib import Path

import jsonschema

from lore_daemon import __version__, protocol
from lore_daemon.errors import CODES

from .support import TOKEN, ClientPool, DaemonEnv, SeedRun, rpc, seed_ledger

SCHEMAS = Path(__file__).resolve().parents[2] / "schema" / "robot"


def _schema(name: str) -> dict[str, typing.Any]:
    loaded: dict[str, typing.Any] = json.loads((SCHEMAS / f"{name}.json").read_text())
    return loaded


def _ledger(now: int) -> list[SeedRun]:
    statuses = ["succeeded", "failed", "partial", "cancelled", "succeeded", "failed", "succeeded"]
    return [
        SeedRun(run_id=f"run-{i}", status=status, started_ms=now - (10 - i) * 60_000, mode="surgical")
        for i, status in enumerate(statuses)
    ]


async def test_status_reports_the_store_locks_runs_and_config_without_secrets(
    clients: ClientPool, daemon_env: DaemonEnv
) -> None:
    now = int(time.time() * 1000)
    seed_ledger(daemon_env.db_path, _ledger(now), lock_owner="other-host:42:abcd")
    client = await clients.start(daemon_env.with_token())

    status = await rpc(client, "lore/status", {})

    jsonschema.validate(status, _schema("StatusResult"))
    assert status["version"] == __version__
    assert status["schemaVersion"] >= 4
    assert status["dbPath"] == str(daemon_env.db_path)
    assert status["dbSizeBytes"] >= daemon_env.db_path.stat().st_size > 0
    assert [lock["name"] for lock in status["locks"]] == ["sync"]
    assert status["locks"][0]["owner"] == "other-host:42:abcd"
    assert {"discussions", "resource_events", "mr_closes_issues", "mr_diffs"} <= set(status["queueDepths"])
    assert [run["runId"] for run in status["lastRuns"]] == ["run-6", "run-5", "run-4", "run-3", "run-2"]
    assert status["config"]["gitlab"]["tokenEnv"] == "GITLAB_TOKEN"
    assert status["config"]["projects"] == ["group/project"]
    assert status["uptimeMs"] >= 0
    assert TOKEN not in json.dumps(status)


async def test_robot_docs_lists_every_method_error_code_action_kind_and_exit_code(
    clients: ClientPool, daemon_env: DaemonEnv
) -> None:
    client = await clients.start(daemon_env)
    docs = await rpc(client, "lore/robotDocs", None)

    jsonschema.validate(docs, _schema("RobotDocsResult"))
    names = [m["name"] for m in docs["methods"]]
    assert names == sorted([
        "lore/preflight", "lore/syncSurgical", "lore/syncRuns", "lore/sync", "lore/status", "lore/robotDocs",
        "lore/get", "lore/list", "lore/search",
    ])
    for method in docs["methods"]:
        jsonschema.Draft202012Validator.check_schema(method["paramsSchema"])
        jsonschema.Draft202012Validator.check_schema(method["resultSchema"])
        assert set(method["errorCodes"]) <= set(CODES)
    by_name = {m["name"]: m for m in docs["methods"]}
    surgical_params = by_name["lore/syncSurgical"]["paramsSchema"]
    jsonschema.validate({"project": "g/p", "issues": [1], "dryRun": True}, surgical_params)
    assert by_name["lore/syncSurgical"]["reportsProgress"] is True
    assert by_name["lore/status"]["reportsProgress"] is False

    assert [n["name"] for n in docs["notifications"]] == ["lore/progress"]
    codes = {c["code"]: c for c in docs["errorCodes"]}
    assert set(codes) == set(CODES)
    for code, info in CODES.items():
        assert codes[code]["rpcCode"] == info.rpc_code
        assert codes[code]["retryable"] == info.retryable
        assert codes[code]["meaning"] == info.meaning
    assert [a["kind"] for a in docs["recoveryActionKinds"]] == list(typing.get_args(protocol.ActionKind))
    assert {e["exitCode"]: e["meaning"] for e in docs["bridgeExitCodes"]} == protocol.BRIDGE_EXIT_CODES


async def test_sync_runs_filters_by_limit_run_id_and_status(
    clients: ClientPool, daemon_env: DaemonEnv
) -> None:
    now = int(time.time() * 1000)
    seed_ledger(daemon_env.db_path, _ledger(now))
    client = await clients.start(daemon_env)

    everything = await rpc(client, "lore/syncRuns", {})
    assert [r["runId"] for r in everything["runs"]] == [f"run-{i}" for i in range(6, -1, -1)]
    for run in everything["runs"]:
        jsonschema.validate(run, _schema("SyncRun"))

    limited = await rpc(client, "lore/syncRuns", {"limit": 2})
    assert [r["runId"] for r in limited["runs"]] == ["run-6", "run-5"]

    failed = await rpc(client, "lore/syncRuns", {"status": "failed"})
    assert [r["runId"] for r in failed["runs"]] == ["run-5", "run-1"]
    assert all(r["suggestedRetry"]["kind"] == "retryRun" for r in failed["runs"])
    assert failed["runs"][0]["suggestedRetryCommand"].startswith("lore sync")

    one = await rpc(client, "lore/syncRuns", {"runId": "run-3"})
    assert [(r["runId"], r["status"]) for r in one["runs"]] == [("run-3", "cancelled")]
    assert (await rpc(client, "lore/syncRuns", {"runId": "run-3", "status": "failed"}))["runs"] == []
    assert (await rpc(client, "lore/syncRuns", {"runId": "no-such-run"}))["runs"] == []


async def test_first_database_open_closes_runs_of_dead_processes(
    clients: ClientPool, daemon_env: DaemonEnv
) -> None:
    now = int(time.time() * 1000)
    dead = SeedRun(run_id="dead", status="running", started_ms=now - 3_600_000, heartbeat_ms=now - 3_500_000)
    alive = SeedRun(run_id="alive", status="running", started_ms=now - 1_000, heartbeat_ms=now)
    seed_ledger(daemon_env.db_path, [dead, alive])
    client = await clients.start(daemon_env)

    runs = {r["runId"]: r for r in (await rpc(client, "lore/syncRuns", {}))["runs"]}

    assert runs["dead"]["status"] == "failed"
    assert runs["dead"]["error"]["code"] == "ABANDONED"
    assert runs["dead"]["failedPhase"] == "preflight"
    assert runs["alive"]["status"] == "running"
