"""Protocol edges a careless or hostile client can reach, over a bare pipe to the real daemon.

Conflicting ``Content-Length`` headers, a notification method sent with an id, and a request that
reuses the id of one still pending: each gets an error answer (never silence, never a silently
swallowed or double-answered request), and the daemon keeps serving.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from lore_daemon.sim import SimConfig, SimServer

from .support import DaemonEnv, RawDaemon

STATUS = {"jsonrpc": "2.0", "id": 41, "method": "lore/syncRuns", "params": {"limit": 1}}


def _still_serving(daemon: RawDaemon) -> None:
    assert daemon.request("lore/syncRuns", {"limit": 1})["result"] == {"runs": []}


def _no_frame_for(daemon: RawDaemon, seconds: float) -> None:
    with pytest.raises(TimeoutError):
        daemon.read_frame(timeout=seconds)


def test_conflicting_content_length_headers_are_a_framing_error(shared_raw_daemon: RawDaemon) -> None:
    body = json.dumps(STATUS).encode()
    shared_raw_daemon.write(b"Content-Length: 7\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    error = shared_raw_daemon.read_response(None)["error"]
    assert error["code"] == -32700
    assert error["data"]["code"] == "PARSE_ERROR"
    assert "conflicting Content-Length" in error["message"]
    _no_frame_for(shared_raw_daemon, 0.5)  # the body was not served as request 41
    _still_serving(shared_raw_daemon)


def test_repeated_identical_content_length_headers_are_one_header(shared_raw_daemon: RawDaemon) -> None:
    body = json.dumps(STATUS).encode()
    header = b"Content-Length: %d\r\n" % len(body)
    shared_raw_daemon.write(header + header + b"\r\n" + body)
    assert shared_raw_daemon.read_response(41)["result"] == {"runs": []}


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("initialized", {}),
        ("exit", None),
        ("$/cancelRequest", {"id": 1}),
        ("textDocument/didOpen", {"textDocument": {"uri": "file:///x", "languageId": "x", "version": 1,
                                                   "text": ""}}),
    ],
)
def test_a_notification_method_sent_with_an_id_gets_an_error(
    shared_raw_daemon: RawDaemon, method: str, params: object
) -> None:
    message: dict[str, object] = {"jsonrpc": "2.0", "id": f"n-{method}", "method": method}
    if params is not None:
        message["params"] = params
    shared_raw_daemon.send(message)
    error = shared_raw_daemon.read_response(f"n-{method}")["error"]
    assert error["code"] == -32600
    assert error["data"]["code"] == "INVALID_REQUEST"
    assert "notification" in error["message"]
    assert shared_raw_daemon.proc.poll() is None  # an `exit` with an id did not stop it
    _still_serving(shared_raw_daemon)


@pytest.fixture(scope="module")
def slow_sim() -> Iterator[SimServer]:
    with SimServer(SimConfig(seed=3, issues=5, mrs=2, notes_per_entity=1)) as server:
        server.control.set_latency(1500, route=r"/issues/1$")
        yield server


def test_a_request_reusing_a_pending_id_is_rejected_and_the_pending_one_runs_on(
    daemon_env: DaemonEnv, slow_sim: SimServer
) -> None:
    daemon_env.write_config(base_url=slow_sim.base_url)
    daemon = RawDaemon(daemon_env.with_token(slow_sim.token))
    try:
        daemon.send({"jsonrpc": "2.0", "id": 5, "method": "lore/preflight",
                     "params": {"project": "group/project", "issues": [1]}})
        daemon.send({"jsonrpc": "2.0", "id": 5, "method": "lore/syncRuns", "params": {"limit": 1}})
        rejected = daemon.read_response(5)
        assert rejected["error"]["code"] == -32600
        assert rejected["error"]["data"]["code"] == "INVALID_REQUEST"
        assert "already used by a pending request" in rejected["error"]["message"]

        first = daemon.read_response(5, timeout=20)  # the pending preflight still gets its answer
        assert first["result"]["ok"] is True
        assert [e["iid"] for e in first["result"]["entities"]] == [1]

        daemon.send({"jsonrpc": "2.0", "id": 5, "method": "lore/syncRuns", "params": {"limit": 1}})
        assert daemon.read_response(5)["result"] == {"runs": []}  # answered ids are free again
    finally:
        daemon.close()
