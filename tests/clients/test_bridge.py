"""The `lore` bridge end to end: a real daemon subprocess, the simulator over loopback, and the
documented exit code of each error class."""

from __future__ import annotations

import json
import subprocess

import apsw

from lore_daemon.protocol import BRIDGE_EXIT_CODES

from .conftest import PROJECT, ClientEnv


def run(env: ClientEnv, *args: str) -> tuple[int, dict, str]:
    proc = subprocess.run(env.lore(*args), env=env.env, capture_output=True, text=True, timeout=120)
    payload = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, payload, proc.stderr


def test_surgical_sync_prints_typed_json_and_exits_zero(client_env: ClientEnv) -> None:
    code, payload, _ = run(client_env, "sync", "-p", PROJECT, "--issue", "3", "--mr", "2")
    assert code == 0
    assert payload["status"] == "succeeded" and payload["mode"] == "surgical"
    assert {(e["kind"], e["iid"], e["outcome"]) for e in payload["entities"]} == {
        ("issue", 3, "ingested"), ("mr", 2, "ingested"),
    }
    conn = apsw.Connection(str(client_env.db_path))
    assert conn.execute("SELECT count(*) FROM issues WHERE iid = 3").fetchall() == [(1,)]


def test_missing_target_exits_with_not_found_class_and_recovery_actions(client_env: ClientEnv) -> None:
    code, payload, _ = run(client_env, "sync", "-p", PROJECT, "--issue", "1", "--issue", "4040")
    assert code == 5 and 5 in BRIDGE_EXIT_CODES
    assert payload["status"] == "failed" and payload["failedPhase"] == "preflight"
    assert [(f["iid"], f["code"]) for f in payload["entityFailures"]] == [(4040, "GITLAB_NOT_FOUND")]
    found = next(e for e in payload["entities"] if e["iid"] == 1)
    assert found["outcome"] == "failed" and found["title"] and found["updatedAt"]  # fetched, not written
    assert any(a["command"].startswith("lore ") for a in payload["recoveryActions"])


def test_invalid_target_is_a_usage_error(client_env: ClientEnv) -> None:
    code, payload, _ = run(client_env, "sync", "--ref", "not-a-ref")
    assert code == 2
    assert payload["error"]["data"]["code"] == "INVALID_TARGET"


def test_missing_config_is_a_config_error(client_env: ClientEnv) -> None:
    client_env.env["LORE_CONFIG_PATH"] = str(client_env.config_path) + ".missing"
    code, payload, _ = run(client_env, "sync-runs")
    assert code == 3
    assert payload["error"]["data"]["code"] == "CONFIG_NOT_FOUND"


def test_dry_run_then_sync_runs_shows_the_ledger(client_env: ClientEnv) -> None:
    run(client_env, "sync", "-p", PROJECT, "--issue", "5")
    code, payload, _ = run(client_env, "sync", "--dry-run", "-p", PROJECT, "--issue", "5", "--issue", "6")
    assert code == 0
    local = {e["iid"]: e["local"]["exists"] for e in payload["entities"]}
    assert local == {5: True, 6: False}
    code, runs, _ = run(client_env, "sync-runs", "--limit", "5")
    assert code == 0
    assert [r["status"] for r in runs["runs"]] == ["succeeded"]  # a dry run writes no ledger row


def test_rpc_mode_answers_each_line(client_env: ClientEnv) -> None:
    lines = "\n".join([
        json.dumps({"id": 1, "method": "lore/status", "params": {}}),
        json.dumps({"id": 2, "method": "lore/nope", "params": {}}),
    ]) + "\n"
    proc = subprocess.run(client_env.lore("rpc"), env=client_env.env, input=lines,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    by_id = {o["id"]: o for o in out if "id" in o}
    assert by_id[1]["result"]["version"]
    assert by_id[2]["error"]["code"] == -32601


def test_reembed_flag_reaches_the_standard_sync_and_its_retry_keeps_it(client_env: ClientEnv) -> None:
    import socket

    with socket.socket() as sock:  # an embeddings server that is down: the run ends partial fast
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    text = client_env.config_path.read_text().replace(
        '[embedding]\nprovider = "none"\n',
        f'[embedding]\nprovider = "openai"\nmodel = "m"\nbase_url = "http://127.0.0.1:{port}/v1"\n'
        "timeout_ms = 300\n",
    )
    client_env.config_path.write_text(text)
    code, payload, _ = run(client_env, "sync", "-p", PROJECT, "--reembed")
    assert code == 8 and payload["status"] == "partial" and payload["mode"] == "standard"
    assert {f["code"] for f in payload["entityFailures"]} == {"EMBEDDING_UNAVAILABLE"}
    retry = next(a for a in payload["recoveryActions"] if a["kind"] == "retryRun")
    assert retry["request"]["params"]["reembed"] is True and "--reembed" in retry["command"]
    code, status, _ = run(client_env, "status")
    assert status["embedding"]["provider"] == "openai" and status["embedding"]["state"] == "unavailable"


def test_status_on_a_terminal_ends_with_the_embedding_line() -> None:
    from lore_client.bridge import _embedding_line

    line = _embedding_line({
        "provider": "local", "model": "all-MiniLM-L6-v2", "dimensions": 384, "state": "ready",
        "currentDocuments": 120, "documents": 130, "error": None,
    })
    expected = "embedding: local all-MiniLM-L6-v2 (384 dims), ready, 120/130 documents with current vectors"
    assert line == expected
    assert "lexical" in _embedding_line({"provider": "none"})
