"""The authenticated-API throttle, as Rack::Attack runs it in front of GitLab (API-NOTES §1.12, §5.13d).

Requests carrying the accepted token are counted per fixed window of ``period_s`` seconds on the
simulator's clock (window = ``now // period``). Once the count exceeds ``limit`` the request is
refused with 429 ``Retry later`` and ``Retry-After: period - now % period`` — the rest of the
window, so 1 to 60 s for a one-minute period and up to an hour for GitLab's self-managed default of
3,600 s. Refused requests still count, as they do in Rack::Attack.

Headers: ``RateLimit-Name``, ``-Limit`` (normalised per minute), ``-Observed``, ``-Remaining``,
``-Reset`` (Unix time of the window's end), ``-ResetTime`` (HTTP date) on the 429 (with
``Retry-After``), and — in ``headers="all"`` mode, like GitLab ≥ 18.6 with
``rate_limiting_headers_for_unthrottled_requests`` — on every counted response too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from email.utils import formatdate

from lore_daemon.sim.clock import SimClock
from lore_daemon.sim.wire import Response, text_response

HEADER_MODES = ("all", "throttled", "none")
THROTTLE_NAME = "throttle_authenticated_api"


@dataclass(slots=True)
class Verdict:
    allowed: bool
    headers: list[tuple[str, str]]  # to add to the response (empty when the mode hides them)
    retry_after_s: int


class RateLimiter:
    """One throttle for the token's user. ``limit == 0`` turns it off (nothing counted or sent)."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.window = -1
        self.observed = 0
        self.throttled = 0  # requests refused so far (a counter for tests and stats)

    def check(self, limit: int, period_s: int, header_mode: str) -> Verdict | None:
        """Count one request; None when throttling is off."""
        if limit <= 0:
            return None
        now_s = self.clock.now_ms() / 1000
        window = int(now_s // period_s)
        if window != self.window:
            self.window, self.observed = window, 0
        self.observed += 1
        reset = (window + 1) * period_s
        retry_after = max(1, math.ceil(reset - now_s))
        allowed = self.observed <= limit
        if not allowed:
            self.throttled += 1
        headers: list[tuple[str, str]] = []
        if header_mode == "all" or (header_mode == "throttled" and not allowed):
            headers = [
                ("RateLimit-Name", THROTTLE_NAME),
                ("RateLimit-Limit", str(max(1, round(limit * 60 / period_s)))),
                ("RateLimit-Observed", str(self.observed)),
                ("RateLimit-Remaining", str(max(0, limit - self.observed))),
                ("RateLimit-Reset", str(reset)),
                ("RateLimit-ResetTime", formatdate(reset, usegmt=True)),
            ]
            if not allowed:
                headers.append(("Retry-After", str(retry_after)))
        return Verdict(allowed, headers, retry_after)

    def reset(self) -> None:
        self.window, self.observed, self.throttled = -1, 0, 0

    def describe(self) -> dict[str, int]:
        return {"window": self.window, "observed": self.observed, "throttled": self.throttled}


def throttled_response(verdict: Verdict) -> Response:
    """Rack::Attack's answer: plain text ``Retry later``."""
    return text_response(429, "Retry later\n", verdict.headers)
