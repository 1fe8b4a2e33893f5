"""Fault rules: what to do to the next requests matching a route regex (API-NOTES §1.12;
docs/simulator.md, "Fault rules").

Kinds:
- ``status``: answer the next status of ``statuses`` (a ``200`` or ``None`` passes through to the
  real handler); without ``times`` the rule expires when the sequence is used up.
- ``timeout``: keep the connection open without answering (until the client gives up).
- ``drop``: close the socket without a response.
- ``truncate``: headers with the full Content-Length, half the body, then close.
- ``malformed``: 200 with a body that is not valid JSON.
- ``rate_limit``: 429 ``Retry later`` with RateLimit-* and Retry-After when ``retry_after`` is
  given (RateLimit-* alone with ``ratelimit_reset``), or with no such headers at all.
- ``trickle``: the real response, its body sent one byte every ``interval_ms`` (a server or proxy
  that never stalls long enough for a per-read timeout to fire).
Any rule may add ``latency_ms`` and apply a ``mutation`` (``{"op": ..., **args}``) when it fires.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from lore_daemon.errors import InvalidParamsError
from lore_daemon.sim.wire import REASONS, Response, json_response, text_response

FAULT_KINDS = ("status", "timeout", "drop", "truncate", "malformed", "rate_limit", "trickle")
DEFAULT_TRICKLE_MS = 1_000


@dataclass(slots=True)
class FaultRule:
    id: int
    route: str
    method: str = "GET"  # "*" matches any method
    kind: str = "status"
    statuses: list[int] | None = None
    times: int | None = None
    retry_after: float | None = None
    ratelimit_reset: bool = False
    latency_ms: int | None = None
    mutation: dict[str, Any] | None = None
    hold_s: float | None = None
    interval_ms: int | None = None
    fired: int = 0
    pattern: re.Pattern[str] = field(default=re.compile(""), repr=False)

    @property
    def exhausted(self) -> bool:
        if self.times is not None:
            return self.fired >= self.times
        return self.kind == "status" and bool(self.statuses) and self.fired >= len(self.statuses or ())

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "route": self.route,
            "method": self.method,
            "kind": self.kind,
            "statuses": self.statuses,
            "times": self.times,
            "retry_after": self.retry_after,
            "ratelimit_reset": self.ratelimit_reset,
            "latency_ms": self.latency_ms,
            "mutation": self.mutation,
            "hold_s": self.hold_s,
            "interval_ms": self.interval_ms,
            "fired": self.fired,
        }


@dataclass(frozen=True, slots=True)
class Firing:
    """One rule applied to one request: what the HTTP layer must do."""

    rule_id: int
    kind: str
    status: int | None  # for kind "status": the status to answer, None = pass through
    latency_ms: int
    mutation: dict[str, Any] | None
    retry_after: float | None
    ratelimit_reset: bool
    hold_s: float | None
    interval_ms: int


class FaultBook:
    """Active rules (first match wins, in insertion order) and latency settings."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self.global_latency_ms = 0
        self.route_latency: list[tuple[re.Pattern[str], str, int]] = []
        self._next_id = 1

    def add(self, spec: dict[str, Any]) -> FaultRule:
        known = set(FaultRule.__slots__) - {"id", "fired", "pattern"}
        unknown = set(spec) - known
        if unknown:
            raise _bad(f"unknown fault fields: {', '.join(sorted(unknown))}")
        rule = FaultRule(id=self._next_id, **spec)
        if rule.kind not in FAULT_KINDS:
            raise _bad(f"fault kind must be one of {', '.join(FAULT_KINDS)}")
        try:
            rule.pattern = re.compile(rule.route)
        except re.error as exc:
            raise _bad(f"bad route regex {rule.route!r}: {exc}") from exc
        if rule.statuses is not None and not all(
            isinstance(s, int) and 100 <= s <= 599 for s in rule.statuses
        ):
            raise _bad("statuses must be HTTP status codes")
        if rule.times is not None and rule.times < 1:
            raise _bad("times must be at least 1")
        if rule.interval_ms is not None and not 1 <= rule.interval_ms <= 60_000:
            raise _bad("interval_ms must be between 1 and 60000")
        rule.method = rule.method.upper()
        self._next_id += 1
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def set_latency(self, ms: int, route: str | None) -> None:
        if ms < 0:
            raise _bad("latency must not be negative")
        if route is None:
            self.global_latency_ms = ms
            return
        self.route_latency = [entry for entry in self.route_latency if entry[1] != route]
        if ms:
            self.route_latency.append((re.compile(route), route, ms))

    def latency_for(self, path: str) -> int:
        """A per-route latency replaces the global one for matching paths."""
        for pattern, _, ms in self.route_latency:
            if pattern.search(path):
                return ms
        return self.global_latency_ms

    def fire(self, method: str, path: str) -> Firing | None:
        """The first live rule matching this request, consumed by one; None when none match."""
        for rule in self.rules:
            if rule.method not in ("*", method) or not rule.pattern.search(path):
                continue
            index = rule.fired
            rule.fired += 1
            if rule.exhausted:
                self.rules.remove(rule)
            status = None
            if rule.kind == "status" and rule.statuses:
                status = rule.statuses[min(index, len(rule.statuses) - 1)]
                status = None if status == 200 else status
            return Firing(
                rule.id,
                rule.kind,
                status,
                rule.latency_ms or 0,
                rule.mutation,
                rule.retry_after,
                rule.ratelimit_reset,
                rule.hold_s,
                rule.interval_ms or DEFAULT_TRICKLE_MS,
            )
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "rules": [r.describe() for r in self.rules],
            "global_latency_ms": self.global_latency_ms,
            "route_latency": {route: ms for _, route, ms in self.route_latency},
        }


def status_response(status: int) -> Response:
    """An injected error status with the body GitLab (or its proxy, for 502-504) would send."""
    reason = REASONS.get(status, "Error")
    if status == 429:
        return text_response(429, "Retry later\n")
    if status in (502, 503, 504):
        page = f"<html><body><h1>{status} {reason}</h1></body></html>\n"
        return Response(status, page.encode(), [], content_type="text/html; charset=utf-8")
    if status == 404:
        return json_response(404, {"message": "404 Not found"})
    return json_response(status, {"message": f"{status} {reason}"})


def rate_limit_response(firing: Firing, now_s: float, limit_per_minute: int = 2000) -> Response:
    """429 ``Retry later``; headers only when the rule asks for them (GitLab.com edge sends none).
    ``now_s`` is the simulator's clock: ``RateLimit-Reset`` is a time on GitLab's clock."""
    headers: list[tuple[str, str]] = []
    if firing.retry_after is not None or firing.ratelimit_reset:
        wait = firing.retry_after if firing.retry_after is not None else 1.0
        reset = math.ceil(now_s + wait)
        headers = [
            ("RateLimit-Name", "throttle_authenticated_api"),
            ("RateLimit-Limit", str(limit_per_minute)),
            ("RateLimit-Observed", str(limit_per_minute + 1)),
            ("RateLimit-Remaining", "0"),
            ("RateLimit-Reset", str(reset)),
            ("RateLimit-ResetTime", formatdate(reset, usegmt=True)),
        ]
        if firing.retry_after is not None:
            value = firing.retry_after
            headers.append(
                ("Retry-After", str(int(value)) if float(value).is_integer() else repr(float(value)))
            )
    return text_response(429, "Retry later\n", headers)


def _bad(message: str) -> InvalidParamsError:
    return InvalidParamsError(message, "INVALID_PARAMS", "Check the fault rule.")
