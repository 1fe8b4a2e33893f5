"""The async GitLab REST v4 client shared by every run in the daemon.

Three guarantees shape it:

* The token only ever goes to the configured GitLab. URLs are built from ``base_url`` and every
  URL about to be sent, whether built here or taken from a ``Location`` or ``Link`` header, is
  checked against the configured scheme, host, port and base path. httpx never follows redirects.
* One ``asyncio.Semaphore`` per client bounds in-flight requests for all runs together. It is held
  only while a request is on the wire, never during retry waits.
* Every retry wait is observable: runs set :data:`wait_observer` (and :data:`request_observer`)
  in their task context to turn waits into progress notifications and counters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload
from urllib.parse import quote

import httpx
import msgspec

from lore_daemon import __version__
from lore_daemon.errors import GitLabRequestError, TargetError
from lore_daemon.tuning import DEFAULT_TUNING

from . import models as m
from ._failures import Failure, Scrubber, bad_shape_error, body_message, exhausted_error, status_error
from ._pagination import next_page_url
from ._retry import RetryPolicy, RetryWait, rate_limit_wait_s, retryable_status
from ._urls import Origin, normalize_base_url, parse_origin, strip_credentials

_log = logging.getLogger("lore_daemon.gitlab")

T = TypeVar("T")
EntityKindArg = Literal["issue", "mr"]
EventKind = Literal["state", "label", "milestone"]


@dataclass(frozen=True, slots=True)
class RequestSent:
    """One HTTP request about to be sent, reported to :data:`request_observer`."""

    method: str
    path: str
    attempt: int


wait_observer: ContextVar[Callable[[RetryWait], None] | None] = ContextVar(
    "lore_gitlab_wait_observer", default=None
)
"""Called with a :class:`RetryWait` before each retry sleep, in the requesting task's context."""

request_observer: ContextVar[Callable[[RequestSent], None] | None] = ContextVar(
    "lore_gitlab_request_observer", default=None
)
"""Called once per HTTP request sent (retries and redirects included), in the task's context."""

# Typed decoders are immutable, thread-safe and costly to build: build each once.
_USER = msgspec.json.Decoder(m.CurrentUser)
_VERSION = msgspec.json.Decoder(m.Version)
_PROJECT = msgspec.json.Decoder(m.Project)
_ISSUE = msgspec.json.Decoder(m.Issue)
_MR = msgspec.json.Decoder(m.MergeRequest)
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_DISCUSSIONS = msgspec.json.Decoder(list[m.Discussion])
_STATE_EVENTS = msgspec.json.Decoder(list[m.StateEvent])
_LABEL_EVENTS = msgspec.json.Decoder(list[m.LabelEvent])
_MILESTONE_EVENTS = msgspec.json.Decoder(list[m.MilestoneEvent])
_CLOSES = msgspec.json.Decoder(list[m.ClosesIssue])
_DIFFS = msgspec.json.Decoder(list[m.MrDiff])

_KIND_SEGMENT: dict[str, str] = {"issue": "issues", "mr": "merge_requests"}
_EVENT_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "state": _STATE_EVENTS,
    "label": _LABEL_EVENTS,
    "milestone": _MILESTONE_EVENTS,
}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5


def _fetched(decoder: msgspec.json.Decoder[T]) -> Callable[[bytes], m.Fetched[T]]:
    def decode(body: bytes) -> m.Fetched[T]:
        return m.Fetched(decoder.decode(body), body)

    return decode


def _fetched_page(decoder: msgspec.json.Decoder[T]) -> Callable[[bytes], list[m.Fetched[T]]]:
    """Decode a list page keeping each item's exact bytes (for ``raw_payloads``)."""

    def decode(body: bytes) -> list[m.Fetched[T]]:
        return [m.Fetched(decoder.decode(raw), bytes(raw)) for raw in _RAW_LIST.decode(body)]

    return decode


def _notify(observer: Callable[[Any], None] | None, event: object) -> None:
    """Call an observer; a broken observer must not break the fetch it observes."""
    if observer is None:
        return
    try:
        observer(event)
    except Exception:
        _log.exception("GitLab client observer failed")


def project_ref(id_or_path: int | str) -> str:
    """The ``:id`` path segment: a numeric id, or the URL-encoded full path (``/`` → ``%2F``)."""
    if isinstance(id_or_path, int):
        return str(id_or_path)
    text = id_or_path.strip().strip("/")
    if not text:
        raise TargetError(
            "empty project path", "INVALID_TARGET", "Name the project as group/project or its numeric id."
        )
    return quote(text, safe="")


class GitLabClient:
    """Async GitLab client. Share one instance per daemon; close it with ``aclose()``."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        http2: bool = False,
        per_page: int = DEFAULT_TUNING.per_page,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self._base_url = normalize_base_url(base_url)
        origin = parse_origin(self._base_url)
        assert origin is not None  # normalize_base_url rejected everything else
        self._origin: Origin = origin
        self._api_root = self._base_url + "/api/v4"
        self._retry = retry or RetryPolicy()
        self._concurrency = concurrency
        self._per_page = per_page
        self._in_flight = asyncio.Semaphore(concurrency)
        self._scrub = Scrubber(token)
        self._http = httpx.AsyncClient(
            headers={
                "PRIVATE-TOKEN": token,
                "Accept": "application/json",
                "User-Agent": f"lore-daemon/{__version__}",
            },
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            transport=transport,
            http2=http2,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"GitLabClient(base_url={self._base_url!r}, concurrency={self._concurrency})"

    @property
    def base_url(self) -> str:
        """The configured GitLab, normalised (no trailing slash; may carry a path prefix)."""
        return self._base_url

    @property
    def concurrency(self) -> int:
        return self._concurrency

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._retry

    async def __aenter__(self) -> GitLabClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------------------ endpoints

    async def get_user(self) -> m.CurrentUser:
        """``GET /user``: the token's owner; the cheapest auth check."""
        return (await self._get("/user", _USER.decode))[0]

    async def get_version(self) -> m.Version:
        return (await self._get("/version", _VERSION.decode))[0]

    async def get_project(self, id_or_path: int | str) -> m.Project:
        """By numeric id or full path. A 301 for a moved path is followed when it stays on GitLab."""
        return (await self._get(f"/projects/{project_ref(id_or_path)}", _PROJECT.decode))[0]

    async def get_issue(self, project_id: int, iid: int) -> m.Fetched[m.Issue]:
        path = f"/projects/{int(project_id)}/issues/{int(iid)}"
        return (await self._get(path, _fetched(_ISSUE)))[0]

    async def get_merge_request(self, project_id: int, iid: int) -> m.Fetched[m.MergeRequest]:
        path = f"/projects/{int(project_id)}/merge_requests/{int(iid)}"
        return (await self._get(path, _fetched(_MR)))[0]

    def iter_issues(
        self, project_id: int, *, updated_after: str | None = None
    ) -> AsyncIterator[list[m.Fetched[m.Issue]]]:
        """Pages of issues (all states), oldest ``updated_at`` first (GitLab breaks ties by id DESC)."""
        params = _listing_params(updated_after)
        return self._iter_pages(f"/projects/{int(project_id)}/issues", params, _fetched_page(_ISSUE))

    def iter_merge_requests(
        self, project_id: int, *, updated_after: str | None = None
    ) -> AsyncIterator[list[m.Fetched[m.MergeRequest]]]:
        params = _listing_params(updated_after)
        return self._iter_pages(f"/projects/{int(project_id)}/merge_requests", params, _fetched_page(_MR))

    async def list_discussions(self, project_id: int, kind: EntityKindArg, iid: int) -> list[m.Discussion]:
        """Every discussion (with all its notes) of an issue or MR, all pages."""
        path = f"/projects/{int(project_id)}/{_KIND_SEGMENT[kind]}/{int(iid)}/discussions"
        return await self._collect(path, _DISCUSSIONS.decode)

    @overload
    async def list_resource_events(
        self, project_id: int, kind: EntityKindArg, iid: int, event: Literal["state"]
    ) -> list[m.StateEvent]: ...
    @overload
    async def list_resource_events(
        self, project_id: int, kind: EntityKindArg, iid: int, event: Literal["label"]
    ) -> list[m.LabelEvent]: ...
    @overload
    async def list_resource_events(
        self, project_id: int, kind: EntityKindArg, iid: int, event: Literal["milestone"]
    ) -> list[m.MilestoneEvent]: ...
    async def list_resource_events(
        self, project_id: int, kind: EntityKindArg, iid: int, event: EventKind
    ) -> list[m.StateEvent] | list[m.LabelEvent] | list[m.MilestoneEvent]:
        """``resource_{state,label,milestone}_events`` of an issue or MR, all pages."""
        path = f"/projects/{int(project_id)}/{_KIND_SEGMENT[kind]}/{int(iid)}/resource_{event}_events"
        result: list[Any] = await self._collect(path, _EVENT_DECODERS[event].decode)
        return result

    async def list_closes_issues(self, project_id: int, mr_iid: int) -> list[m.ClosesIssue]:
        path = f"/projects/{int(project_id)}/merge_requests/{int(mr_iid)}/closes_issues"
        return await self._collect(path, _CLOSES.decode)

    async def list_mr_diffs(self, project_id: int, mr_iid: int) -> list[m.MrDiff]:
        """``/diffs`` (GitLab ≥ 15.7), paginated: one item per changed file."""
        path = f"/projects/{int(project_id)}/merge_requests/{int(mr_iid)}/diffs"
        return await self._collect(path, _DIFFS.decode)

    # ------------------------------------------------------------------------------ machinery

    async def _collect(self, path: str, decode_page: Callable[[bytes], list[T]]) -> list[T]:
        items: list[T] = []
        async for page in self._iter_pages(path, {}, decode_page):
            items.extend(page)
        return items

    async def _iter_pages(
        self, path: str, params: dict[str, str], decode_page: Callable[[bytes], list[T]]
    ) -> AsyncIterator[list[T]]:
        """Walk pages by the rules of ``_pagination``; yields each non-empty page as it arrives."""
        url: httpx.URL | None = httpx.URL(
            self._api_root + path, params={**params, "per_page": str(self._per_page), "page": "1"}
        )
        while url is not None:
            items, response = await self._get(path, decode_page, url=url)
            if items:
                yield items
            url = next_page_url(
                headers=response.headers,
                request_url=url,
                count=len(items),
                per_page=self._per_page,
                origin=self._origin,
                what=f"GET {path}",
                scrub=self._scrub,
            )

    async def _get(
        self, path: str, decode: Callable[[bytes], T], *, url: httpx.URL | None = None
    ) -> tuple[T, httpx.Response]:
        """GET with the retry policy; returns the decoded body and the final response.

        Decoding is part of the attempt: a truncated or malformed body is retried like a 5xx.
        """
        what = f"GET {path}"
        target = url if url is not None else httpx.URL(self._api_root + path)
        policy = self._retry
        started = time.monotonic()
        attempt = 0
        redirects = 0
        while True:
            attempt += 1
            failure: Failure
            try:
                response = await self._send(target, path, attempt)
            except httpx.TimeoutException as exc:
                failure = Failure("timeout", None, self._scrub(f"{type(exc).__name__} {exc}".strip()))
            except httpx.TransportError as exc:
                failure = Failure("connection", None, self._scrub(f"{type(exc).__name__}: {exc}"))
            else:
                status = response.status_code
                if status in _REDIRECTS and "location" in response.headers:
                    redirects += 1
                    target = self._redirect_target(what, target, response, redirects)
                    attempt -= 1  # a redirect is not a failed attempt
                    continue
                if 200 <= status < 300:
                    try:
                        return decode(response.content), response
                    except msgspec.ValidationError as exc:
                        raise bad_shape_error(what, status, str(exc), self._scrub) from None
                    except msgspec.DecodeError as exc:
                        failure = Failure("bad_body", status, f"{exc}")
                else:
                    reason = retryable_status(status)
                    if reason is None:
                        raise status_error(what, response, self._scrub, attempt) from None
                    asked = rate_limit_wait_s(response.headers, time.time()) if status == 429 else None
                    failure = Failure(reason, status, body_message(response, self._scrub), asked)
            delay = failure.requested_wait_s
            if delay is None:
                delay = policy.backoff_s(attempt)
            elapsed = time.monotonic() - started
            if attempt >= policy.max_attempts or elapsed + delay > policy.max_elapsed_s:
                retry_after_ms = int(delay * 1000) if failure.reason == "rate_limit" else None
                raise exhausted_error(what, failure, attempt, elapsed, retry_after_ms) from None
            wait = RetryWait(failure.reason, failure.status, int(delay * 1000), attempt, path)
            _log.debug("retry %s in %d ms after %s (attempt %d)", what, wait.wait_ms, failure.reason, attempt)
            _notify(wait_observer.get(), wait)
            await asyncio.sleep(delay)

    async def _send(self, url: httpx.URL, path: str, attempt: int) -> httpx.Response:
        """One request on the wire, inside the shared concurrency limit."""
        if not self._origin.owns(str(url)):  # the token-safety invariant, checked on every send
            raise GitLabRequestError(
                f"GET {path}: refusing to send a request outside the configured GitLab",
                "GITLAB_REQUEST_FAILED",
                "This is a bug in lore-daemon; please report it.",
                details={"url": strip_credentials(str(url.copy_with(query=None)))},
            )
        _notify(request_observer.get(), RequestSent("GET", path, attempt))
        async with self._in_flight:
            return await self._http.get(url)

    def _redirect_target(
        self, what: str, current: httpx.URL, response: httpx.Response, redirects: int
    ) -> httpx.URL:
        """Where a 3xx points, if it is safe to follow: on the configured GitLab, few hops."""
        location = current.join(response.headers["location"])
        if redirects > _MAX_REDIRECTS or not self._origin.owns(str(location)):
            shown = self._scrub(strip_credentials(str(location.copy_with(query=None))))
            too_many = redirects > _MAX_REDIRECTS
            reason = "too many redirects" if too_many else "a redirect outside the configured GitLab"
            raise GitLabRequestError(
                f"{what}: {reason} (HTTP {response.status_code} to {shown}); not followed",
                "GITLAB_REQUEST_FAILED",
                "Set gitlab.base_url to GitLab's external URL, or use the project's numeric id.",
                details={"request": what, "location": shown, "baseUrl": self._base_url},
                http_status=response.status_code,
            )
        return location


def _listing_params(updated_after: str | None) -> dict[str, str]:
    params = {"order_by": "updated_at", "sort": "asc", "scope": "all", "state": "all"}
    if updated_after is not None:
        params["updated_after"] = updated_after
    return params

