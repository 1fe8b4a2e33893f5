"""The simulator's clock: GitLab's "now", which tests can move forward without sleeping.

Everything time-dependent that GitLab decides on its own clock reads this one: the ``Date`` header
of every response, the stamps of mutations (``updated_at``, note and event times), the
``ThrottledTouch`` rule (API-NOTES §5.5) and the rate-limit windows (§1.12). It runs with the wall
clock plus an offset that only grows, so "60 s later" is ``advance(60_000)``, not a sleep, and the
clock never goes backwards (a later stamp is never older than an earlier one).
"""

from __future__ import annotations

import time
from email.utils import formatdate

from lore_daemon.timeutil import ms_to_iso


class SimClock:
    def __init__(self) -> None:
        self.offset_ms = 0
        self._last_ms = 0

    def now_ms(self) -> int:
        """Milliseconds since the epoch on GitLab's clock; never less than a previous reading."""
        now = time.time_ns() // 1_000_000 + self.offset_ms
        self._last_ms = max(self._last_ms, now)
        return self._last_ms

    def advance(self, ms: int) -> int:
        """Move "now" forward by ``ms`` (>= 0); returns the new now."""
        if ms < 0:
            raise ValueError("the simulator's clock only moves forward")
        self.offset_ms += ms
        return self.now_ms()

    def http_date(self) -> str:
        """``Date`` header value (RFC 9110 IMF-fixdate, whole seconds, as every server sends)."""
        return formatdate(self.now_ms() // 1000, usegmt=True)

    def describe(self) -> dict[str, object]:
        now = self.now_ms()
        return {"now_ms": now, "now": ms_to_iso(now), "offset_ms": self.offset_ms, "date": self.http_date()}
