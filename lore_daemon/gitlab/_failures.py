"""Turning failed GitLab responses into the typed errors of ``lore_daemon.errors``.

Messages name the request (``GET /projects/42/issues/7``) and quote GitLab's own ``message`` /
``error`` text, trimmed. The token is scrubbed from anything echoed back, defensively: a proxy
or a misconfigured server could reflect request headers into a body.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import msgspec

from lore_daemon.errors import (
    ConfigError,
    GitLabBadResponseError,
    GitLabError,
    GitLabRateLimitedError,
    GitLabUnavailableError,
    gitlab_error_for_status,
)

from ._retry import WaitReason

_MAX_QUOTE = 300
_MAX_BODY_PARSE = 64 * 1024


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt: why, the HTTP status if any, what GitLab said, what it asked us to wait."""

    reason: WaitReason
    status: int | None
    text: str
    requested_wait_s: float | None = None


class Scrubber:
    """Removes the token from text. Holds the secret so nothing else has to."""

    __slots__ = ("_secret",)

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def __repr__(self) -> str:
        return "Scrubber(***)"

    def __call__(self, text: str) -> str:
        if self._secret and self._secret in text:
            return text.replace(self._secret, "[REDACTED]")
        return text


def body_message(response: httpx.Response, scrub: Scrubber) -> str:
    """GitLab's explanation from an error body: ``message``, ``error``, ``error_description``."""
    content = response.content
    text = ""
    if 0 < len(content) <= _MAX_BODY_PARSE:
        try:
            data = msgspec.json.decode(content)
        except msgspec.DecodeError:
            data = None
        if isinstance(data, dict):
            parts = [_as_text(data.get(key)) for key in ("message", "error", "error_description")]
            text = " - ".join(p for p in parts if p)
    if not text:
        text = content[:_MAX_QUOTE * 2].decode("utf-8", "replace")
    text = " ".join(scrub(text).split())
    return text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 1] + "…"


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode("utf-8", "replace")


def status_error(what: str, response: httpx.Response, scrub: Scrubber, attempts: int) -> GitLabError:
    """The error for a status that is not retried (401, 403, 404, other 4xx, odd 3xx)."""
    status = response.status_code
    said = body_message(response, scrub)
    message = f"{what} failed with HTTP {status}" + (f": {said}" if said else "")
    error = gitlab_error_for_status(status, message)
    error.details = {"request": what, "attempts": attempts}
    return error


def exhausted_error(
    what: str, last: Failure, attempts: int, elapsed_s: float, retry_after_ms: int | None
) -> GitLabError:
    """The error after the retry budget ran out (or a requested wait would cross it)."""
    budget = f"after {attempts} attempt{'s' if attempts != 1 else ''} in {elapsed_s:.1f} s"
    said = f": {last.text}" if last.text else ""
    details = {
        "request": what, "attempts": attempts, "elapsedMs": int(elapsed_s * 1000), "reason": last.reason
    }
    error: GitLabError
    if last.reason in ("rate_limit", "server_error") and last.status is not None:
        message = f"{what} failed with HTTP {last.status} {budget}{said}"
        error = gitlab_error_for_status(last.status, message, retry_after_ms=retry_after_ms)
    elif last.reason == "bad_body":
        error = GitLabBadResponseError(
            f"{what} returned an undecodable body {budget}{said}",
            "GITLAB_BAD_RESPONSE",
            "GitLab (or a proxy in front of it) sent truncated or malformed JSON; retry the run later.",
            http_status=last.status,
        )
    else:
        kind = (
            "did not answer in time (deadline for the whole response, body included)"
            if last.reason == "timeout"
            else "could not connect or lost the connection"
        )
        error = GitLabUnavailableError(
            f"{what} {kind} {budget}{said}",
            "GITLAB_UNAVAILABLE",
            "Check that GitLab is reachable from this machine, then retry.",
        )
    error.details = details
    return error


def bad_shape_error(what: str, status: int, problem: str, scrub: Scrubber) -> GitLabBadResponseError:
    """A well-formed JSON body of the wrong shape: deterministic, so not retried."""
    return GitLabBadResponseError(
        f"{what} returned JSON of an unexpected shape: {scrub(problem)[:_MAX_QUOTE]}",
        "GITLAB_BAD_RESPONSE",
        "This GitLab version answers differently than expected; report it with the GitLab version.",
        details={"request": what},
        http_status=status,
    )


def rate_limited_error(what: str, wait_s: float, *, attempts: int, why: str) -> GitLabRateLimitedError:
    """A request that will not wait out a rate-limit pause: ``retry_after_ms`` says how long it has."""
    return GitLabRateLimitedError(
        f"{what}: {why}; GitLab's rate limit resets in {wait_s:.0f} s",
        "GITLAB_RATE_LIMITED",
        "Wait for the rate limit to reset, then retry.",
        details={"request": what, "attempts": attempts, "retryAfterMs": int(wait_s * 1000)},
        http_status=429,
        retry_after_ms=int(wait_s * 1000),
    )


def looks_like_gitlab_error(response: httpx.Response) -> bool:
    """GitLab's API answers errors as JSON objects with ``message`` or ``error`` (API-NOTES §1.11)."""
    content = response.content
    if not content or len(content) > _MAX_BODY_PARSE:
        return False
    try:
        data = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return False
    return isinstance(data, dict) and ("message" in data or "error" in data)


def not_gitlab_error(what: str, response: httpx.Response, base_url: str, scrub: Scrubber) -> ConfigError:
    """``gitlab.base_url`` answers, but not as GitLab's API: a wrong URL, not a refused token."""
    kind = response.headers.get("content-type", "no content type").split(";")[0].strip()
    start = " ".join(scrub(response.content[:80].decode("utf-8", "replace")).split())
    return ConfigError(
        f"{base_url} does not look like GitLab's API: {what} answered HTTP {response.status_code} "
        f"with {kind} ({start!r}), not GitLab's JSON",
        "CONFIG_INVALID",
        "Set gitlab.base_url to the address you open GitLab at in a browser (https://host, or "
        "https://host/prefix for GitLab under a path), without /api/v4.",
        details={"key": "gitlab.base_url", "request": what, "baseUrl": base_url},
        http_status=response.status_code,
    )
