"""Every failure is a JSON-RPC error carrying a RobotError, and the daemon keeps serving."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException
from pytest_lsp import LanguageClient

from lore_daemon.errors import CODES

from .support import TOKEN, ClientPool, DaemonEnv, RawDaemon, rpc


async def _error(client: LanguageClient, method: str, params: Any) -> JsonRpcException:
    with pytest.raises(JsonRpcException) as err:
        await rpc(client, method, params)
    data = err.value.data
    assert set(data) == {"code", "message", "suggestion", "retryable", "actions", "details"}
    assert data["code"] in CODES
    assert err.value.code == CODES[data["code"]].rpc_code
    assert "traceback" not in json.dumps(data).lower()
    return err.value


async def test_invalid_params_name_the_path(clients: ClientPool, daemon_env: DaemonEnv) -> None:
    client = await clients.start(daemon_env)

    unknown = await _error(client, "lore/syncSurgical", {"project": "g/p", "issues": [1], "isues": [2]})
    assert unknown.code == -32602
    assert unknown.data["code"] == "INVALID_PARAMS"
    assert unknown.data["details"]["path"] == "$.isues"

    wrong_type = await _error(client, "lore/syncSurgical", {"project": "g/p", "issues": ["12"]})
    assert wrong_type.code == -32602
    assert wrong_type.data["details"]["path"] == "$.issues[0]"
    assert "$.issues[0]" in wrong_type.data["message"]

    not_object = await _error(client, "lore/syncRuns", [1, 2])
    assert not_object.data["code"] == "INVALID_PARAMS"

    out_of_range = await _error(client, "lore/syncRuns", {"limit": 0})
    assert out_of_range.data["details"]["path"] == "$.limit"

    bad_enum = await _error(client, "lore/syncRuns", {"status": "exploded"})
    assert bad_enum.data["details"]["path"] == "$.status"

    # Still serving after every one of them.
    assert "runs" in await rpc(client, "lore/syncRuns", {"limit": 1})


def test_a_request_without_params_member_is_answered(raw_daemon: RawDaemon) -> None:
    raw_daemon.initialize()
    runs = raw_daemon.request("lore/syncRuns", omit_params=True)
    assert runs["result"] == {"runs": []}

    no_targets = raw_daemon.request("lore/syncSurgical", omit_params=True)
    assert no_targets["error"]["code"] == -32602
    assert no_targets["error"]["data"]["code"] == "NO_TARGETS"

    null_params = raw_daemon.request("lore/preflight", None)
    assert null_params["error"]["data"]["code"] == "NO_TARGETS"


async def test_unknown_method_is_method_not_found(clients: ClientPool, daemon_env: DaemonEnv) -> None:
    client = await clients.start(daemon_env)
    err = await _error(client, "lore/doesNotExist", {})
    assert err.code == -32601
    assert err.data["code"] == "METHOD_NOT_FOUND"
    assert "lore/doesNotExist" in err.message
    assert (await rpc(client, "lore/robotDocs", {}))["name"] == "lore-daemon"


async def test_missing_config_file_is_a_structured_error_and_the_daemon_keeps_serving(
    clients: ClientPool, daemon_env: DaemonEnv
) -> None:
    daemon_env.config_path.unlink()
    client = await clients.start(daemon_env.with_token())

    preflight = {"project": "group/project", "issues": [1]}
    for method, params in (("lore/status", {}), ("lore/preflight", preflight)):
        err = await _error(client, method, params)
        assert err.code == -32803
        assert err.data["code"] == "CONFIG_NOT_FOUND"
        assert err.data["details"]["file"] == str(daemon_env.config_path)
        assert [a["kind"] for a in err.data["actions"]] == ["fixConfig"]
        assert str(daemon_env.config_path) in err.data["actions"][0]["command"]

    assert (await rpc(client, "lore/robotDocs", {}))["name"] == "lore-daemon"
    # Fixing the file takes effect without a restart: failures are not cached.
    daemon_env.write_config()
    assert (await rpc(client, "lore/status", {}))["dbPath"] == str(daemon_env.db_path)


async def test_unset_token_fails_gitlab_methods_only(clients: ClientPool, daemon_env: DaemonEnv) -> None:
    client = await clients.start(daemon_env)  # no GITLAB_TOKEN in the environment

    err = await _error(client, "lore/preflight", {"project": "group/project", "issues": [1]})
    assert err.code == -32803
    assert err.data["code"] == "TOKEN_NOT_SET"
    assert err.data["details"]["env"] == "GITLAB_TOKEN"
    assert err.data["actions"][0]["kind"] == "fixToken"
    err = await _error(client, "lore/sync", {})
    assert err.data["code"] == "TOKEN_NOT_SET"

    status = await rpc(client, "lore/status", {})  # reading needs no token
    assert status["config"]["gitlab"]["tokenEnv"] == "GITLAB_TOKEN"


async def test_invalid_initialization_options_are_a_config_error(
    clients: ClientPool, daemon_env: DaemonEnv
) -> None:
    client = await clients.start(daemon_env, init_options={"sync": {"primary_concurrency": "fast"}})
    err = await _error(client, "lore/status", {})
    assert err.data["code"] == "CONFIG_INVALID"
    assert err.data["details"]["key"] == "sync.primary_concurrency"

    other = await clients.start(daemon_env, init_options={"gitlab": {"no_such_key": 1}})
    err = await _error(other, "lore/syncRuns", {})
    assert err.data["code"] == "CONFIG_UNKNOWN_KEY"


async def test_initialization_options_override_config_for_the_session(
    clients: ClientPool, daemon_env: DaemonEnv, tmp_path: Any
) -> None:
    session_db = tmp_path / "session.db"
    options = {"storage": {"db_path": str(session_db)}, "sync": {"primary_concurrency": 3}}
    client = await clients.start(daemon_env, init_options=options)
    status = await rpc(client, "lore/status", {})
    assert status["dbPath"] == str(session_db)
    assert status["config"]["sync"]["primaryConcurrency"] == 3
    assert session_db.exists()


async def test_token_never_appears_in_errors_or_logs(clients: ClientPool, daemon_env: DaemonEnv) -> None:
    log_file = daemon_env.tmp / "d.log"
    client = await clients.start(daemon_env.with_token(), args=("--log-file", str(log_file), "-vv"))
    err = await _error(client, "lore/preflight", {"project": "group/project", "issues": [1], "dryRun": 1})
    assert TOKEN not in json.dumps(err.data)
    status = await rpc(client, "lore/status", {})
    assert TOKEN not in json.dumps(status)
    await client.shutdown_session()
    log = log_file.read_text()
    assert "lore/status" in log  # -vv traces every message
    assert TOKEN not in log
