"""LSP base-protocol framing (``Content-Length`` headers), read defensively.

pygls' own reader silently skips a header block without a usable ``Content-Length`` and, worse,
never answers a body that fails to parse. This reader reports every such problem as a
``FramingProblem`` so the transport can answer ``-32700`` and carry on, and it resynchronises on
the next ``Content-Length`` header even when garbage is glued in front of it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Protocol

MAX_HEADER_LINE = 8192
MAX_BODY_BYTES = 64 * 1024 * 1024
_CONTENT_LENGTH = b"content-length:"
_DIGITS = re.compile(rb"^[0-9]{1,12}$")


class ByteStream(Protocol):
    def readline(self, limit: int = -1, /) -> bytes: ...

    def read(self, n: int = -1, /) -> bytes: ...


class FdStream:
    """A minimal buffered reader over a raw file descriptor.

    ``sys.stdin.buffer`` takes an internal lock while it blocks in ``read``; a daemon thread
    parked there makes interpreter shutdown abort ("could not acquire lock ... at interpreter
    shutdown"). ``os.read`` holds no Python-level lock, so the process exits cleanly.
    """

    CHUNK = 65536

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buf = bytearray()
        self._eof = False

    def _fill(self) -> bool:
        if self._eof:
            return False
        try:
            chunk = os.read(self._fd, self.CHUNK)
        except OSError:
            chunk = b""
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    def readline(self, limit: int = -1, /) -> bytes:
        start = 0
        while True:
            end = self._buf.find(b"\n", start)
            if end >= 0:
                end += 1
                break
            if 0 <= limit <= len(self._buf):
                end = limit
                break
            start = len(self._buf)
            if not self._fill():
                end = len(self._buf)
                break
        if 0 <= limit < end:
            end = limit
        line = bytes(self._buf[:end])
        del self._buf[:end]
        return line

    def read(self, n: int = -1, /) -> bytes:
        while len(self._buf) < n and self._fill():
            pass
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data


@dataclass(frozen=True, slots=True)
class Frame:
    """One message body, exactly as many bytes as its ``Content-Length`` said."""

    body: bytes


@dataclass(frozen=True, slots=True)
class FramingProblem:
    """A header block that cannot be turned into a body; ``reason`` is safe to send to the client."""

    reason: str


class FrameReader:
    """Reads frames from a blocking binary stream; ``read()`` returns None at end of input."""

    def __init__(self, stream: ByteStream, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self._stream = stream
        self._max_body = max_body_bytes

    def read(self) -> Frame | FramingProblem | None:
        headers: dict[bytes, bytes] = {}
        garbage = False
        conflicting_length = False
        while True:
            line = self._stream.readline(MAX_HEADER_LINE)
            if not line:
                return None
            if not line.endswith(b"\n") and len(line) >= MAX_HEADER_LINE:
                garbage = True  # an over-long line: not a header; keep reading to resync
                continue
            if line.strip() == b"":
                if headers or garbage:
                    break
                continue  # stray blank lines between messages are harmless
            start = line.lower().find(_CONTENT_LENGTH)
            if start > 0:
                # Bytes glued in front of a header (e.g. an unterminated body): drop them.
                headers.clear()
                garbage = False
                conflicting_length = False
                line = line[start:]
            name, sep, value = line.partition(b":")
            if not sep:
                garbage = True
                continue
            key, value = name.strip().lower(), value.strip()
            if key == b"content-length" and headers.get(key, value) != value:
                conflicting_length = True
            headers[key] = value
        if conflicting_length:
            # Which length is right is unknowable, so is where this body ends: answer, and resync
            # on the next header (the body is then skipped as garbage).
            return FramingProblem("conflicting Content-Length headers")
        return self._body(headers)

    def _body(self, headers: dict[bytes, bytes]) -> Frame | FramingProblem | None:
        raw = headers.get(b"content-length")
        if raw is None:
            return FramingProblem("header block without a Content-Length header")
        if not _DIGITS.match(raw):
            return FramingProblem("Content-Length is not a non-negative integer")
        length = int(raw)
        if length == 0:
            return FramingProblem("Content-Length is 0: an empty message")
        if length > self._max_body:
            return FramingProblem(f"Content-Length {length} exceeds the {self._max_body}-byte limit")
        body = self._stream.read(length)
        if len(body) < length:
            return None  # the stream ended inside the body: nothing more will come
        return Frame(body)
