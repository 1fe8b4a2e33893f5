"""In-process unit tests of the transport and error-mapping pieces (no subprocess)."""

from __future__ import annotations

import io
import os

from lore_daemon.errors import CODES, ConfigError, GitLabRateLimitedError
from lore_daemon.protocol import SyncSurgicalParams
from lore_daemon.rpc.envelope import check_envelope
from lore_daemon.rpc.framing import FdStream, Frame, FrameReader, FramingProblem
from lore_daemon.services.error_mapping import to_rpc_error
from lore_daemon.services.spec import Call


def _frames(data: bytes) -> list[Frame | FramingProblem]:
    reader = FrameReader(io.BytesIO(data))
    out: list[Frame | FramingProblem] = []
    while (item := reader.read()) is not None:
        out.append(item)
    return out


def test_frame_reader_reads_back_to_back_frames_and_resyncs_after_garbage() -> None:
    data = (
        b"Content-Length: 2\r\n\r\n{}"
        b"Content-Length: nope\r\n\r\n{\"glued\": 1}"
        b"Content-Length: 4\r\n\r\nnull"
        b"\r\n\r\njunk line\r\n\r\n"
        b"CONTENT-LENGTH: 1\r\nX-Other: y\r\n\r\n1"
    )
    items = _frames(data)
    assert items[0] == Frame(b"{}")
    assert isinstance(items[1], FramingProblem)
    assert items[2] == Frame(b"null")
    assert isinstance(items[3], FramingProblem)  # the junk-only header block
    assert items[4] == Frame(b"1")
    assert len(items) == 5


def test_frame_reader_stops_at_a_body_cut_short_by_end_of_input() -> None:
    assert _frames(b"Content-Length: 100\r\n\r\n{}") == []


def test_frame_reader_rejects_oversized_bodies() -> None:
    reader = FrameReader(io.BytesIO(b"Content-Length: 99999\r\n\r\n"), max_body_bytes=1000)
    problem = reader.read()
    assert isinstance(problem, FramingProblem)
    assert "exceeds" in problem.reason


def test_fd_stream_reads_lines_and_exact_lengths_from_a_pipe() -> None:
    r, w = os.pipe()
    os.write(w, b"first\r\nsecond line\r\nabcdef")
    os.close(w)
    stream = FdStream(r)
    try:
        assert stream.readline(8192) == b"first\r\n"
        assert stream.readline(4) == b"seco"
        assert stream.readline(8192) == b"nd line\r\n"
        assert stream.read(4) == b"abcd"
        assert stream.read(10) == b"ef"
        assert stream.readline(8192) == b""
    finally:
        os.close(r)


def test_envelope_checks() -> None:
    assert check_envelope({"jsonrpc": "2.0", "id": 1, "method": "m"}) is None
    assert check_envelope({"jsonrpc": "2.0", "method": "m"}) is None
    assert check_envelope({"jsonrpc": "2.0", "id": "a", "result": None}) is None
    bad = check_envelope({"jsonrpc": "2.0", "id": 1.5, "method": "m"})
    assert bad is not None and bad.reply_id is None and bad.must_reply
    notification = check_envelope({"jsonrpc": "2.0", "method": 3})
    assert notification is not None and not notification.must_reply


def test_unexpected_exceptions_become_generic_internal_errors() -> None:
    err = to_rpc_error(RuntimeError("boom at /home/secret/path.py line 3"), Call("lore/status"))
    assert err.code == CODES["INTERNAL"].rpc_code == -32603
    assert err.data["code"] == "INTERNAL"
    text = repr(err.data) + err.message
    assert "/home/secret" not in text and "boom" not in text and "Traceback" not in text


def test_lore_errors_map_directly_with_executable_actions() -> None:
    params = SyncSurgicalParams(project="g/p", issues=[3], work_done_token="tok")
    limited = GitLabRateLimitedError("slow down", "GITLAB_RATE_LIMITED", "wait", retry_after_ms=1500)
    err = to_rpc_error(limited, Call("lore/syncSurgical", params))
    assert err.code == -32803
    action = err.data["actions"][0]
    assert action["kind"] == "waitAndRetry"
    assert action["afterMs"] == 1500
    assert action["request"] == {"method": "lore/syncSurgical", "params": {"project": "g/p", "issues": [3]}}
    assert action["command"] == "lore sync -p g/p --issue 3"

    details = {"file": "/c/config.toml", "key": "sync.x"}
    config = ConfigError("bad", "CONFIG_INVALID", "fix it", details=details)
    err = to_rpc_error(config, Call("lore/status"))
    assert err.data["details"] == {"file": "/c/config.toml", "key": "sync.x"}
    assert err.data["actions"][0]["kind"] == "fixConfig"
    assert "sync.x" in err.data["actions"][0]["title"]
