"""Test helpers for the GitLab client: a scripted httpx.MockTransport and fast retry policies."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

from lore_daemon.gitlab import RetryPolicy, RetryWait, wait_observer
from lore_daemon.protocol import TargetParams

BASE = "https://gitlab.example.com"
TOKEN = "glpat-TOPSECRET-0123456789"
SUB = "https://gitlab.example.com/gitlab"  # a GitLab served under a path prefix
G = f"{BASE}/group/proj"

# Waits short enough to keep the suite fast, deterministic (no jitter) so waits can be asserted.
FAST = RetryPolicy(max_attempts=6, max_elapsed_s=30.0, base_delay_s=0.001, max_delay_s=0.004, jitter=0.0)

Step = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def page_response(
    items: list[Any], headers: dict[str, str] | None = None, status: int = 200
) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(items).encode(), headers=headers or {})


def issue(iid: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": 1000 + iid,
        "iid": iid,
        "project_id": 7,
        "title": f"issue {iid}",
        "state": "opened",
        "created_at": "2024-01-01T00:00:00.000Z",
        "updated_at": "2024-01-02T00:00:00.000Z",
        "web_url": f"{BASE}/g/p/-/issues/{iid}",
        **extra,
    }


def raw_path(request: httpx.Request) -> str:
    """The path as sent, percent-encoding kept (``/projects/g%2Fp``), without the query."""
    return request.url.raw_path.split(b"?")[0].decode("ascii")


@dataclass
class Script:
    """Answers requests from per-path queues of steps; the last step of a queue repeats."""

    routes: dict[str, list[Step]] = field(default_factory=dict)
    fallback: Callable[[httpx.Request], httpx.Response] | None = None
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, path: str, *steps: Step) -> Script:
        self.routes[path] = list(steps)
        return self

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def calls(self, path: str) -> int:
        return sum(1 for r in self.requests if raw_path(r) == path)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        steps = self.routes.get(raw_path(request))
        if steps is None:
            if self.fallback is not None:
                return self.fallback(request)
            return httpx.Response(404, json={"error": "404 Not Found"})
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return httpx.Response(step.status_code, headers=step.headers, content=step.content)
        return step(request)


class WaitRecorder:
    """Collects RetryWait events through the client's context variable."""

    def __init__(self) -> None:
        self.waits: list[RetryWait] = []
        self._token: Any = None

    def __enter__(self) -> WaitRecorder:
        self._token = wait_observer.set(self.waits.append)
        return self

    def __exit__(self, *exc: object) -> None:
        wait_observer.reset(self._token)


def params(**kw: Any) -> TargetParams:
    """Build target params the way the daemon does: from camelCase wire JSON."""
    return msgspec.convert(kw, TargetParams)


@contextmanager
def html_server() -> Iterator[str]:
    """A real HTTP server on loopback that is not GitLab: every path is the same HTML page."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = b"<!doctype html><title>Intranet</title><p>Hello</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
