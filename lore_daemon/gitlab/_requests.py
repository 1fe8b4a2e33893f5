"""One GET to GitLab, end to end: lane, rate-limit gate, concurrency slot, deadline, retries.

An attempt, in order: wait while the client's rate-limit gate is closed (or fail fast, by lane) →
background requests take their paced start → take a slot of the shared limit (interactive first)
→ send, with the deadline covering the whole response body → classify the answer. Redirects on
the configured GitLab are followed; 429s pause the gate for everyone; retryable failures back off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import msgspec

from lore_daemon.errors import GitLabRequestError

from ._failures import (
    Failure,
    Scrubber,
    bad_shape_error,
    body_message,
    exhausted_error,
    looks_like_gitlab_error,
    not_gitlab_error,
    rate_limited_error,
    status_error,
)
from ._gate import RateGate, read_budget, server_now
from ._lanes import PrioritySlots, request_lane
from ._retry import RetryPolicy, RetryWait, rate_limit_wait_s, retryable_status
from ._urls import Origin, strip_credentials

_log = logging.getLogger("lore_daemon.gitlab")
T = TypeVar("T")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_REPORT_PAUSE_S = 0.5  # shared pauses shorter than this are not worth a progress report
_IDENTITY_PATHS = ("/user", "/version")  # GitLab always serves these: a 404 means "not GitLab"


@dataclass(frozen=True, slots=True)
class RequestSent:
    """One HTTP request about to be sent, reported to :data:`request_observer`."""

    method: str
    path: str
    attempt: int


wait_observer: ContextVar[Callable[[RetryWait], None] | None] = ContextVar(
    "lore_gitlab_wait_observer", default=None
)
"""Called with a :class:`RetryWait` before each wait, in the requesting task's context."""

request_observer: ContextVar[Callable[[RequestSent], None] | None] = ContextVar(
    "lore_gitlab_request_observer", default=None
)
"""Called once per HTTP request sent (retries and redirects included), in the task's context."""


def notify(observer: Callable[[Any], None] | None, event: object) -> None:
    """Call an observer; a broken observer must not break the fetch it observes."""
    if observer is None:
        return
    try:
        observer(event)
    except Exception:
        _log.exception("GitLab client observer failed")


class _Timing:
    """What one request has used of its deadline (wire time and backoff, not queueing)."""

    __slots__ = ("spent",)

    def __init__(self) -> None:
        self.spent = 0.0


class Requester:
    """The request machinery one ``GitLabClient`` owns (its slots and gate are shared by all runs)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        origin: Origin,
        base_url: str,
        policy: RetryPolicy,
        slots: PrioritySlots,
        gate: RateGate,
        scrub: Scrubber,
        timeout_s: float,
    ) -> None:
        self.http = http
        self.origin = origin
        self.base_url = base_url
        self.policy = policy
        self.slots = slots
        self.gate = gate
        self.scrub = scrub
        self.timeout_s = timeout_s

    async def get(
        self, path: str, decode: Callable[[bytes], T], target: httpx.URL
    ) -> tuple[T, httpx.Response]:
        """GET with the retry policy; returns the decoded body and the final response.

        Decoding is part of the attempt: a truncated or malformed body is retried like a 5xx.
        """
        what = f"GET {path}"
        policy = self.policy
        timing = _Timing()
        attempt = redirects = limited = 0
        last: Failure | None = None
        while True:
            await self._wait_for_gate(what, path, attempt)
            left = policy.max_elapsed_s - timing.spent
            if left <= 0 and last is not None:
                raise exhausted_error(what, last, attempt, timing.spent, None) from None
            attempt += 1
            deadline = min(self.timeout_s, left) if left > 0 else self.timeout_s
            outcome = await self._attempt(target, path, attempt, deadline, timing)
            if outcome is None:  # the gate closed while this request waited for a slot
                attempt -= 1
                continue
            if isinstance(outcome, Failure):
                failure = outcome
            else:
                response = outcome
                status = response.status_code
                if status != 429:  # a 429's own wait is handled (and reported) below
                    self._observe_budget(response, path, attempt)
                if status in _REDIRECTS and "location" in response.headers:
                    redirects += 1
                    target = self._redirect_target(what, target, response, redirects)
                    attempt -= 1  # a redirect is not a failed attempt
                    continue
                asked = None
                if status == 429:
                    asked = rate_limit_wait_s(response.headers, server_now(response.headers))
                if asked is not None:  # GitLab said when its window resets: a budget of its own
                    limited += 1
                    attempt -= 1
                    self._on_429(what, path, response, asked, limited)
                    continue
                if 200 <= status < 300:
                    try:
                        return decode(response.content), response
                    except msgspec.ValidationError as exc:
                        if path in _IDENTITY_PATHS:
                            raise not_gitlab_error(what, response, self.base_url, self.scrub) from None
                        raise bad_shape_error(what, status, str(exc), self.scrub) from None
                    except msgspec.DecodeError as exc:
                        if not _json_content(response):
                            raise not_gitlab_error(what, response, self.base_url, self.scrub) from None
                        failure = Failure("bad_body", status, f"{exc}")
                else:
                    reason = retryable_status(status)
                    if reason is None:
                        if _not_gitlab(response, path):
                            raise not_gitlab_error(what, response, self.base_url, self.scrub) from None
                        raise status_error(what, response, self.scrub, attempt) from None
                    failure = Failure(reason, status, body_message(response, self.scrub))
            last = failure
            delay = policy.backoff_s(attempt)
            throttled = failure.reason == "rate_limit"  # a 429 that gave no reset time: back off
            if attempt >= policy.max_attempts or timing.spent + delay >= policy.max_elapsed_s:
                raise exhausted_error(
                    what, failure, attempt, timing.spent, int(delay * 1000) if throttled else None
                ) from None
            if throttled and request_lane.get() == "interactive" and delay > policy.interactive_rate_wait_s:
                raise rate_limited_error(
                    what, delay, attempts=attempt, why="an interactive request does not wait"
                ) from None
            wait = RetryWait(failure.reason, failure.status, int(delay * 1000), attempt, path)
            _log.debug("retry %s in %d ms after %s (attempt %d)", what, wait.wait_ms, failure.reason, attempt)
            observer = wait_observer.get()
            notify(observer, wait)
            if throttled:  # the whole user is throttled: everyone backs off with this request
                self.gate.pause(delay)
                if observer is not None:
                    self.gate.first_report(observer)
            await asyncio.sleep(delay)
            timing.spent += delay

    async def _attempt(
        self, url: httpx.URL, path: str, attempt: int, deadline_s: float, timing: _Timing
    ) -> httpx.Response | Failure | None:
        """One request on the wire inside a slot of the shared limit; None when it must go back
        to the gate instead (a pause started while it queued)."""
        if not self.origin.owns(str(url)):  # the token-safety invariant, checked on every send
            raise GitLabRequestError(
                f"GET {path}: refusing to send a request outside the configured GitLab",
                "GITLAB_REQUEST_FAILED",
                "This is a bug in lore-daemon; please report it.",
                details={"url": strip_credentials(str(url.copy_with(query=None)))},
            )
        await self.slots.acquire(request_lane.get())
        try:
            if self.gate.paused_for() > 0:
                return None
            notify(request_observer.get(), RequestSent("GET", path, attempt))
            started = time.monotonic()
            try:
                async with asyncio.timeout(deadline_s):
                    return await self.http.get(url)
            except TimeoutError:
                return Failure("timeout", None, f"no complete answer within {deadline_s:.1f} s")
            except httpx.TimeoutException as exc:
                return Failure("timeout", None, self.scrub(f"{type(exc).__name__}: {exc}"))
            except httpx.TransportError as exc:
                return Failure("connection", None, self.scrub(f"{type(exc).__name__}: {exc}"))
            finally:
                timing.spent += time.monotonic() - started
        finally:
            self.slots.release()

    # ------------------------------------------------------------------------------- rate limits

    async def _wait_for_gate(self, what: str, path: str, attempt: int) -> None:
        """Sleep through a closed gate (fail fast when the lane will not wait that long), then
        take a paced start when background requests are being spaced out."""
        policy = self.policy
        lane = request_lane.get()
        limit = policy.interactive_rate_wait_s if lane == "interactive" else policy.background_rate_wait_s
        while (pause := self.gate.paused_for()) > 0:
            if pause > limit:
                why = "an interactive request does not wait" if lane == "interactive" else "too long to wait"
                raise rate_limited_error(what, pause, attempts=attempt, why=why) from None
            observer = wait_observer.get()
            if pause >= _REPORT_PAUSE_S and observer is not None and self.gate.first_report(observer):
                notify(observer, RetryWait("rate_limit", None, int(pause * 1000), attempt, path))
            await asyncio.sleep(pause)
        if lane == "background":
            delay = self.gate.pacing_delay()
            if delay > 0:
                await asyncio.sleep(delay)

    def _on_429(self, what: str, path: str, response: httpx.Response, wait: float, limited: int) -> None:
        """Close the gate for everyone for as long as GitLab asked; report the wait, or fail when
        this request's lane will not wait that long. ``limited`` counts this request's 429s."""
        policy = self.policy
        self.gate.pause(wait)
        lane = request_lane.get()
        limit = policy.interactive_rate_wait_s if lane == "interactive" else policy.background_rate_wait_s
        said = body_message(response, self.scrub)
        if wait > limit or limited >= policy.max_rate_limited:
            why = f"HTTP 429 ({said})" if said else "HTTP 429"
            if limited >= policy.max_rate_limited:
                why += f", {limited} times"
            raise rate_limited_error(what, wait, attempts=limited, why=why) from None
        observer = wait_observer.get()
        notify(observer, RetryWait("rate_limit", 429, int(wait * 1000), limited, path))
        if observer is not None:
            self.gate.first_report(observer)  # this run has heard of this pause now

    def _observe_budget(self, response: httpx.Response, path: str, attempt: int) -> None:
        budget = read_budget(response.headers)
        if budget is None:
            return
        paused = self.gate.observe(budget)
        observer = wait_observer.get()
        if paused is not None and paused >= _REPORT_PAUSE_S and observer is not None:
            self.gate.first_report(observer)
            notify(observer, RetryWait("rate_limit", None, int(paused * 1000), attempt, path))

    # -------------------------------------------------------------------------------- redirects

    def _redirect_target(
        self, what: str, current: httpx.URL, response: httpx.Response, redirects: int
    ) -> httpx.URL:
        """Where a 3xx points, if it is safe to follow: on the configured GitLab, few hops."""
        location = current.join(response.headers["location"])
        if redirects > _MAX_REDIRECTS or not self.origin.owns(str(location)):
            shown = self.scrub(strip_credentials(str(location.copy_with(query=None))))
            too_many = redirects > _MAX_REDIRECTS
            reason = "too many redirects" if too_many else "a redirect outside the configured GitLab"
            raise GitLabRequestError(
                f"{what}: {reason} (HTTP {response.status_code} to {shown}); not followed",
                "GITLAB_REQUEST_FAILED",
                "Set gitlab.base_url to GitLab's external URL, or use the project's numeric id.",
                details={"request": what, "location": shown, "baseUrl": self.base_url},
                http_status=response.status_code,
            )
        return location


def _not_gitlab(response: httpx.Response, path: str) -> bool:
    """A refusal GitLab would not send: 401/403/404 without GitLab's JSON error body, or a 404 for
    a route every GitLab serves (``base_url`` points at the wrong place)."""
    status = response.status_code
    if status not in (401, 403, 404):
        return False
    return not looks_like_gitlab_error(response) or (status == 404 and path in _IDENTITY_PATHS)


def _json_content(response: httpx.Response) -> bool:
    """Whether a body that failed to decode was at least meant to be JSON (else: not GitLab)."""
    kind = response.headers.get("content-type", "").lower()
    start = response.content.lstrip()[:1]
    return "json" in kind or start in (b"[", b"{")
