"""The async GitLab REST v4 client shared by every run in the daemon.

Four guarantees shape it:

* The token only ever goes to the configured GitLab. URLs are built from ``base_url`` and every
  URL about to be sent, whether built here or taken from a ``Location`` or ``Link`` header, is
  checked against the configured scheme, host, port and base path. httpx never follows redirects.
* One concurrency limit per client bounds in-flight requests for all runs together, and serves
  interactive requests (surgical runs, reads) before queued background ones (the standard sync;
  ``_lanes``). A slot is held only while a request is on the wire, never during waits.
* One rate-limit gate per client: a 429 pauses every request of every run until GitLab's reset,
  and the budget GitLab reports paces background requests before it refuses (``_gate``).
* Every request has a deadline that covers its whole answer, body included, and every wait is
  observable: runs set :data:`wait_observer` (and :data:`request_observer`) in their task context
  to turn waits into progress notifications and counters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Literal, TypeVar, overload
from urllib.parse import quote

import httpx

from lore_daemon import __version__
from lore_daemon.errors import GitLabRequestError, TargetError
from lore_daemon.tuning import DEFAULT_TUNING

from . import _decode as d
from . import models as m
from ._failures import Scrubber
from ._gate import RateGate
from ._lanes import PrioritySlots
from ._pagination import keyset_next_url, next_page_url
from ._requests import Requester, RequestSent, request_observer, wait_observer
from ._retry import RetryPolicy
from ._urls import Origin, normalize_base_url, parse_origin

__all__ = ["GitLabClient", "RequestSent", "project_ref", "request_observer", "wait_observer"]

T = TypeVar("T")
EntityKindArg = Literal["issue", "mr"]
EventKind = Literal["state", "label", "milestone"]

_KIND_SEGMENT: dict[str, str] = {"issue": "issues", "mr": "merge_requests"}


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
        self._scrub = Scrubber(token)
        self._keyset: bool | None = None  # issues listing: None = untried, False = GitLab said 405
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
        self.slots = PrioritySlots(concurrency)
        self.gate = RateGate()
        self._requests = Requester(
            self._http,
            origin=self._origin,
            base_url=self._base_url,
            policy=self._retry,
            slots=self.slots,
            gate=self.gate,
            scrub=self._scrub,
            timeout_s=timeout,
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
        return (await self._get("/user", d.USER.decode))[0]

    async def get_version(self) -> m.Version:
        return (await self._get("/version", d.VERSION.decode))[0]

    async def get_project(self, id_or_path: int | str) -> m.Project:
        """By numeric id or full path. A 301 for a moved path is followed when it stays on GitLab."""
        return (await self._get(f"/projects/{project_ref(id_or_path)}", d.PROJECT.decode))[0]

    async def get_issue(self, project_id: int, iid: int) -> m.Fetched[m.Issue]:
        path = f"/projects/{int(project_id)}/issues/{int(iid)}"
        return (await self._get(path, d.fetched(d.ISSUE)))[0]

    async def get_merge_request(self, project_id: int, iid: int) -> m.Fetched[m.MergeRequest]:
        path = f"/projects/{int(project_id)}/merge_requests/{int(iid)}"
        return (await self._get(path, d.fetched(d.MR)))[0]

    def iter_issues(
        self, project_id: int, *, updated_after: str | None = None
    ) -> AsyncIterator[list[m.Fetched[m.Issue]]]:
        """Pages of issues (all states), oldest ``updated_at`` first (GitLab breaks ties by id DESC).

        Keyset-paginated where GitLab offers it (18.3+); after a 405 this client uses offset pages."""
        params = _listing_params(updated_after)
        path = f"/projects/{int(project_id)}/issues"
        return self._iter_pages(path, params, d.fetched_page(d.ISSUE), keyset=True)

    def iter_merge_requests(
        self, project_id: int, *, updated_after: str | None = None
    ) -> AsyncIterator[list[m.Fetched[m.MergeRequest]]]:
        """Like ``iter_issues``, always offset-paginated (no GitLab pages MRs by cursor)."""
        params = _listing_params(updated_after)
        path = f"/projects/{int(project_id)}/merge_requests"
        return self._iter_pages(path, params, d.fetched_page(d.MR))

    async def list_discussions(self, project_id: int, kind: EntityKindArg, iid: int) -> list[m.Discussion]:
        """Every discussion (with all its notes) of an issue or MR, all pages."""
        path = f"/projects/{int(project_id)}/{_KIND_SEGMENT[kind]}/{int(iid)}/discussions"
        return await self._collect(path, d.DISCUSSIONS.decode)

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
        result: list[Any] = await self._collect(path, d.EVENTS[event].decode)
        return result

    async def list_closes_issues(self, project_id: int, mr_iid: int) -> m.ClosesIssues:
        """Issues the MR closes, decoded item by item: this GitLab's issues in ``internal``,
        external tracker issues (string ids such as ``PROJ-123``) in ``external``."""
        path = f"/projects/{int(project_id)}/merge_requests/{int(mr_iid)}/closes_issues"
        return d.split_closes(await self._collect(path, d.closes_page))

    async def list_mr_diffs(self, project_id: int, mr_iid: int) -> list[m.MrDiff]:
        """``/diffs`` (GitLab ≥ 15.7), paginated: one item per changed file."""
        path = f"/projects/{int(project_id)}/merge_requests/{int(mr_iid)}/diffs"
        return await self._collect(path, d.DIFFS.decode)

    # ------------------------------------------------------------------------------ machinery

    async def _collect(self, path: str, decode_page: Callable[[bytes], list[T]]) -> list[T]:
        items: list[T] = []
        async for page in self._iter_pages(path, {}, decode_page):
            items.extend(page)
        return items

    async def _iter_pages(
        self,
        path: str,
        params: dict[str, str],
        decode_page: Callable[[bytes], list[T]],
        *,
        keyset: bool = False,
    ) -> AsyncIterator[list[T]]:
        """Walk pages by the rules of ``_pagination``; yields each non-empty page as it arrives.

        With ``keyset`` the walk asks for cursor pages first; a 405 on the first page (a GitLab
        without them) is remembered and the walk restarts with offset pages."""
        use_keyset = keyset and self._keyset is not False
        url: httpx.URL | None = self._first_page(path, params, use_keyset)
        pages = 0
        what = f"GET {path}"
        while url is not None:
            try:
                items, response = await self._get(path, decode_page, url=url)
            except GitLabRequestError as exc:
                if not (use_keyset and pages == 0 and exc.http_status == 405):
                    raise
                self._keyset = use_keyset = False
                url = self._first_page(path, params, keyset=False)
                continue
            pages += 1
            if items:
                yield items
            if use_keyset:
                url, by_cursor = keyset_next_url(
                    headers=response.headers, request_url=url, pages_read=pages, count=len(items),
                    per_page=self._per_page, origin=self._origin, what=what, scrub=self._scrub,
                )
                use_keyset = by_cursor
                if by_cursor:
                    self._keyset = True
                continue
            url = next_page_url(
                headers=response.headers,
                request_url=url,
                count=len(items),
                per_page=self._per_page,
                origin=self._origin,
                what=what,
                scrub=self._scrub,
            )

    def _first_page(self, path: str, params: dict[str, str], keyset: bool) -> httpx.URL:
        paging = {"pagination": "keyset"} if keyset else {"page": "1"}
        return httpx.URL(self._api_root + path, params={**params, "per_page": str(self._per_page), **paging})

    async def _get(
        self, path: str, decode: Callable[[bytes], T], *, url: httpx.URL | None = None
    ) -> tuple[T, httpx.Response]:
        target = url if url is not None else httpx.URL(self._api_root + path)
        return await self._requests.get(path, decode, target)


def _listing_params(updated_after: str | None) -> dict[str, str]:
    params = {"order_by": "updated_at", "sort": "asc", "scope": "all", "state": "all"}
    if updated_after is not None:
        params["updated_after"] = updated_after
    return params

