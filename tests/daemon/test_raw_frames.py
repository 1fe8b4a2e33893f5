"""Malformed input over a bare pipe: each gets the proper JSON-RPC error, then service goes on."""

from __future__ import annotations

import pytest

from .support import RawDaemon


@pytest.fixture
def daemon(shared_raw_daemon: RawDaemon) -> RawDaemon:
    return shared_raw_daemon

# One daemon serves the whole module: every test ends by checking it still answers, so a
# malformed message that broke it would fail that test (and the ones after it).


def _assert_still_serving(daemon: RawDaemon) -> None:
    assert daemon.request("lore/syncRuns", {"limit": 1})["result"] == {"runs": []}


def _null_id_error(daemon: RawDaemon) -> dict[str, object]:
    response = daemon.read_response(None)
    error = response["error"]
    assert isinstance(error, dict)
    return error


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"jsonrpc": "2.0", "id": 1, "method": "lore/status"', b"\xff\xfe\x00garbage"],
    ids=["garbage", "truncated-object", "not-utf8"],
)
def test_garbage_json_is_a_parse_error(daemon: RawDaemon, body: bytes) -> None:
    daemon.send_body(body)
    error = _null_id_error(daemon)
    assert error["code"] == -32700
    assert error["data"]["code"] == "PARSE_ERROR"  # type: ignore[index]
    _assert_still_serving(daemon)


@pytest.mark.parametrize(
    ("body", "reply_id"),
    [
        (b"[1, 2, 3]", None),
        (b"42", None),
        (b'"lore/status"', None),
        (b"null", None),
        (b'{"id": 7, "method": "lore/status"}', 7),
        (b'{"jsonrpc": "1.0", "id": 8, "method": "lore/status"}', 8),
        (b'{"jsonrpc": "2.0", "id": true, "method": "lore/status"}', None),
        (b'{"jsonrpc": "2.0", "id": 9, "method": 5}', 9),
        (b'{"jsonrpc": "2.0", "id": 10}', 10),
    ],
    ids=[
        "array", "number", "string", "null", "no-jsonrpc", "jsonrpc-1.0", "bool-id", "method-int", "no-method"
    ],
)
def test_non_request_json_is_an_invalid_request(daemon: RawDaemon, body: bytes, reply_id: int | None) -> None:
    daemon.send_body(body)
    response = daemon.read_response(reply_id)
    assert response["error"]["code"] == -32600
    assert response["error"]["data"]["code"] == "INVALID_REQUEST"
    _assert_still_serving(daemon)


def test_non_numeric_content_length_is_a_framing_error(daemon: RawDaemon) -> None:
    daemon.write(b'Content-Length: twelve\r\n\r\n{"jsonrpc":"2.0","id":1,"method":"lore/status"}')
    error = _null_id_error(daemon)
    assert error["code"] == -32700
    assert "Content-Length" in str(error["message"])
    _assert_still_serving(daemon)  # resynchronised on the next header despite the glued body


def test_missing_content_length_is_a_framing_error(daemon: RawDaemon) -> None:
    daemon.write(b"Content-Type: application/json\r\n\r\n")
    assert _null_id_error(daemon)["code"] == -32700
    _assert_still_serving(daemon)


def test_too_short_content_length_cuts_the_body_and_resyncs(daemon: RawDaemon) -> None:
    body = b'{"jsonrpc":"2.0","id":1,"method":"lore/status","params":{}}'
    daemon.write(b"Content-Length: 10\r\n\r\n" + body)
    assert _null_id_error(daemon)["code"] == -32700  # the first 10 bytes are not JSON
    _assert_still_serving(daemon)


def test_header_case_and_extra_headers_are_accepted(daemon: RawDaemon) -> None:
    body = b'{"jsonrpc":"2.0","id":"x","method":"lore/syncRuns","params":{"limit":1}}'
    headers = b"content-length: %d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n"
    daemon.write(headers % len(body) + body)
    assert daemon.read_response("x")["result"] == {"runs": []}


def test_lsp_request_with_wrong_param_types_gets_invalid_params(daemon: RawDaemon) -> None:
    params = {"capabilities": 5}
    daemon.send({"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": params})
    response = daemon.read_response(3)
    assert response["error"]["code"] == -32602
    assert response["error"]["data"]["code"] == "INVALID_PARAMS"
    assert daemon.initialize()["result"]["serverInfo"]["name"] == "lore-daemon"


def test_unknown_notification_is_ignored(daemon: RawDaemon) -> None:
    daemon.send({"jsonrpc": "2.0", "method": "lore/notAThing", "params": {}})
    daemon.send({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 999}})
    _assert_still_serving(daemon)
    assert daemon.proc.poll() is None


def test_errors_from_pygls_builtin_handlers_also_carry_a_robot_error(daemon: RawDaemon) -> None:
    response = daemon.request("workspace/executeCommand", {"command": "nope", "arguments": []})
    assert response["error"]["code"] == -32602
    assert response["error"]["data"]["code"] == "INVALID_PARAMS"
    _assert_still_serving(daemon)
