"""The rate-limit gate: one per client, so one 429 pauses every request of the process.

GitLab throttles the *user* (Rack::Attack, API-NOTES §1.12, §5.13d): once one request gets a 429,
every other request would get one too until the window resets. So a 429 (or a response saying the
budget is spent) closes the gate until the reset, and no request of any run starts before then —
in-flight ones that come back with a 429 simply join the pause. ``RateLimit-Remaining`` on ordinary
responses paces background requests before GitLab refuses: once less than ``PACE_BELOW`` of the
window's budget is left, background request starts are spaced so the rest lasts until the reset.

Times here are ``time.monotonic()`` seconds; a server's absolute times (``RateLimit-Reset``, an
HTTP-date ``Retry-After``) are turned into durations against its own ``Date`` header first, so a
skewed local clock cannot stretch or cut a wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from ._retry import parse_ratelimit_reset

PACE_BELOW = 0.2  # pace background requests once less than this share of the window is left


def server_now(headers: Mapping[str, str]) -> float:
    """GitLab's "now" (epoch seconds) from its ``Date`` header; our clock when absent or bad."""
    raw = headers.get("date")
    if raw:
        try:
            return parsedate_to_datetime(raw).timestamp()
        except (TypeError, ValueError, IndexError):
            pass
    return time.time()


@dataclass(frozen=True, slots=True)
class Budget:
    """What a response says of the rate-limit window: requests left, used, seconds to the reset."""

    remaining: int
    observed: int | None
    reset_in_s: float


def read_budget(headers: Mapping[str, str]) -> Budget | None:
    """``RateLimit-Remaining``/``-Observed``/``-Reset`` of a response, or None without them."""
    raw = headers.get("ratelimit-remaining")
    if raw is None or not raw.strip().isdigit():
        return None
    reset_in = parse_ratelimit_reset(headers.get("ratelimit-reset"), server_now(headers))
    if reset_in is None:
        return None
    observed = headers.get("ratelimit-observed", "").strip()
    return Budget(int(raw), int(observed) if observed.isdigit() else None, reset_in)


class RateGate:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._resume_at = 0.0
        self.episode = 0  # bumped each time a pause starts or is extended
        self._spacing = 0.0
        self._next_start = 0.0
        self._pace_until = 0.0  # the reset of the window being paced: no pacing past it
        self._reported: dict[int, int] = {}  # id(observer) -> last episode it was told about

    def pause(self, seconds: float) -> None:
        """No request starts for ``seconds`` (an existing longer pause is kept)."""
        until = self._clock() + max(0.0, seconds)
        if until > self._resume_at:
            self._resume_at = until
            self.episode += 1

    def paused_for(self) -> float:
        return max(0.0, self._resume_at - self._clock())

    def observe(self, budget: Budget) -> float | None:
        """Adapt to a response's budget; returns the pause started when it is spent, else None."""
        if budget.remaining <= 0:
            self._spacing = 0.0
            before = self.paused_for()
            self.pause(budget.reset_in_s)
            return budget.reset_in_s if budget.reset_in_s > before else None
        window = budget.remaining + (budget.observed or 0)
        low = budget.observed is not None and budget.remaining < PACE_BELOW * window
        self._spacing = budget.reset_in_s / budget.remaining if low else 0.0
        self._pace_until = self._clock() + budget.reset_in_s
        return None

    @property
    def spacing_s(self) -> float:
        return self._spacing

    def pacing_delay(self) -> float:
        """Reserve the next background start; how long to wait for it (0 when not pacing).

        Starts are spaced only until the paced window resets: a longer queue than the window's
        budget does not keep sleeping into the next window (its first answer re-paces)."""
        now = self._clock()
        if self._spacing <= 0 or now >= self._pace_until:
            return 0.0
        start = max(now, self._next_start)
        if start >= self._pace_until:
            return self._pace_until - now
        self._next_start = start + self._spacing
        return start - now

    def first_report(self, observer: object) -> bool:
        """True once per pause episode and observer: a run hears of a pause once, not per request."""
        key = id(observer)
        if self._reported.get(key) == self.episode:
            return False
        if len(self._reported) > 1024:
            self._reported.clear()
        self._reported[key] = self.episode
        return True
