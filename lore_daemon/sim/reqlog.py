"""The request log and counters tests read through the control API.

An entry records how a request authenticated (``has_token``, ``auth_header_kind``) but never
the token: a ``private_token``/``access_token`` query value is replaced by ``[FILTERED]``.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any
from urllib.parse import parse_qsl, urlencode

from lore_daemon.sim.wire import Request

_SECRET_PARAMS = ("private_token", "access_token")


def redacted_query(req: Request) -> str:
    if not any(k in _SECRET_PARAMS for k, _ in req.query):
        return req.query_string
    pairs = [(k, "[FILTERED]" if k in _SECRET_PARAMS else v) for k, v in parse_qsl(req.query_string, True)]
    return urlencode(pairs, safe="[]")


class RequestLog:
    """Bounded log of API requests (control requests are not logged) plus running counters."""

    def __init__(self, limit: int) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self.seq = 0
        self.reset_counters()

    def reset_counters(self) -> None:
        self.by_status: Counter[str] = Counter()
        self.by_outcome: Counter[str] = Counter()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections_opened = 0
        self.open_connections = 0
        self.max_open_connections = 0
        self.mutation_errors: list[str] = []

    def clear(self) -> None:
        """Forget entries and reset counters (open connections/in-flight stay accurate)."""
        in_flight, open_conns = self.in_flight, self.open_connections
        self.entries.clear()
        self.reset_counters()
        self.in_flight = self.max_in_flight = in_flight
        self.open_connections = self.max_open_connections = open_conns

    def connection_opened(self) -> None:
        self.connections_opened += 1
        self.open_connections += 1
        self.max_open_connections = max(self.max_open_connections, self.open_connections)

    def connection_closed(self) -> None:
        self.open_connections -= 1

    def start(self, req: Request, auth_kind: str | None) -> dict[str, Any]:
        self.seq += 1
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        entry: dict[str, Any] = {
            "seq": self.seq,
            "method": req.method,
            "path": req.path,
            "query": redacted_query(req),
            "status": None,
            "outcome": "pending",
            "fault_id": None,
            "started_at": time.time() * 1000,
            "finished_at": None,
            "has_token": auth_kind is not None,
            "auth_header_kind": auth_kind,
        }
        self.entries.append(entry)
        return entry

    def finish(self, entry: dict[str, Any], status: int | None, outcome: str) -> None:
        if entry["finished_at"] is not None:
            return
        self.in_flight -= 1
        entry["status"] = status
        entry["outcome"] = outcome
        entry["finished_at"] = time.time() * 1000
        self.by_status[str(status)] += 1
        self.by_outcome[outcome] += 1

    def since(self, seq: int) -> list[dict[str, Any]]:
        return [dict(e) for e in self.entries if e["seq"] > seq]

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "last_seq": self.seq,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "connections_opened": self.connections_opened,
            "open_connections": self.open_connections,
            "max_open_connections": self.max_open_connections,
            "by_status": dict(self.by_status),
            "by_outcome": dict(self.by_outcome),
            "mutation_errors": list(self.mutation_errors),
        }
