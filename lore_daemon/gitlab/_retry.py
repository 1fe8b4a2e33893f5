"""Retry policy: which failures are worth another attempt, and how long to wait before it.

Pure functions over headers and clocks so each rule can be tested without a network. The client
owns the loop; this module only answers "retry?" and "how long?".
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal

WaitReason = Literal["rate_limit", "server_error", "timeout", "connection", "bad_body"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds for retrying one request.

    ``max_attempts`` counts every request sent (the first one included) except the ones answered
    429. ``max_elapsed_s`` is the request's deadline: the time its attempts spend on the wire (body
    included) plus its backoff waits never exceeds it — each attempt is cut off when the deadline
    comes, and a backoff that would cross it is not started. Waiting for a free slot of the
    concurrency limit or for a rate-limit pause to end is not counted.
    Backoff for attempt ``n`` (1-based) is ``min(max_delay_s, base_delay_s * 2**(n-1))``, then
    reduced by a random fraction up to ``jitter`` (0 = deterministic, 1 = full jitter).

    Rate limits depend on the request's lane (``_lanes``): an interactive request waits out a
    pause of at most ``interactive_rate_wait_s`` and otherwise fails at once with
    ``GITLAB_RATE_LIMITED`` and ``retry_after_ms``; a background request waits out pauses of up to
    ``background_rate_wait_s`` each (an hour is GitLab's longest window), at most
    ``max_rate_limited`` such 429s. A 429 that names no reset (no ``Retry-After`` nor
    ``RateLimit-Reset``: GitLab.com's edge) backs off like a 5xx, within ``max_attempts``, and
    every other request of the client backs off with it.
    """

    max_attempts: int = 6
    max_elapsed_s: float = 60.0
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    jitter: float = 0.5
    interactive_rate_wait_s: float = 2.0
    background_rate_wait_s: float = 3_900.0
    max_rate_limited: int = 20

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_rate_limited < 1:
            raise ValueError("max_attempts and max_rate_limited must be >= 1")
        delays = (self.max_elapsed_s, self.base_delay_s, self.max_delay_s, self.interactive_rate_wait_s,
                  self.background_rate_wait_s)
        if min(delays) < 0:
            raise ValueError("delays must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be within [0, 1]")

    def backoff_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Jittered exponential delay after failed attempt number ``attempt`` (1-based)."""
        raw = float(min(self.max_delay_s, self.base_delay_s * (2.0 ** max(0, attempt - 1))))
        if self.jitter == 0.0:
            return raw
        fraction = float((rng or random).random())
        return raw * (1.0 - self.jitter * fraction)


@dataclass(frozen=True, slots=True)
class RetryWait:
    """One wait the client is about to sleep, reported to ``client.wait_observer`` first."""

    reason: WaitReason
    status: int | None  # None for a wait no response of this request asked for (a shared pause)
    wait_ms: int
    attempt: int  # the attempt that just failed (1-based); 0 when none failed (a shared pause)
    path: str  # API path without query string, e.g. "/projects/42/issues"


def retryable_status(status: int) -> WaitReason | None:
    """The wait reason for a status worth retrying, or None when it must fail at once."""
    if status == 429:
        return "rate_limit"
    if status >= 500:
        return "server_error"
    return None


def parse_retry_after(value: str | None, now_epoch_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date.

    Fractional seconds are accepted (some proxies send them). Dates in the past give 0.
    Unparsable values give None, so the caller falls through to the next rule.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        return max(0.0, seconds) if seconds == seconds else None  # NaN guard
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_epoch_s)


def parse_ratelimit_reset(value: str | None, now_epoch_s: float) -> float | None:
    """Seconds until a ``RateLimit-Reset`` Unix time; None when absent or unparsable."""
    if value is None:
        return None
    try:
        reset = float(value.strip())
    except ValueError:
        return None
    if reset != reset:
        return None
    return max(0.0, reset - now_epoch_s)


def rate_limit_wait_s(headers: Mapping[str, str], now_epoch_s: float) -> float | None:
    """What a 429 asks for: ``Retry-After``, else ``RateLimit-Reset``, else None (use backoff)."""
    retry_after = parse_retry_after(headers.get("retry-after"), now_epoch_s)
    if retry_after is not None:
        return retry_after
    return parse_ratelimit_reset(headers.get("ratelimit-reset"), now_epoch_s)
