"""Offset-pagination walking rules for GitLab list endpoints.

GitLab's totals (``X-Total``, ``X-Total-Pages``, ``rel="last"``) vanish above 10,000 items and
proxies sometimes strip headers, so the next page is decided only from what each page says:

1. an empty page ends the walk;
2. ``X-Next-Page`` present: a number is the next page, an empty value means "last page";
3. else ``Link: <...>; rel="next"``, followed only when it stays on the configured GitLab;
4. else, when the page was full (``len == X-Per-Page``, or the ``per_page`` we asked for), ask
   for the following page anyway; a short page ends the walk.

A next page that does not move forward is a server bug that would loop forever: it is refused.

Keyset pages (``pagination=keyset``, project issues on GitLab 18.3+) carry no X-* headers: the
walk follows ``Link: <…cursor=…>; rel="next"`` (on the configured GitLab only) and ends when a
page has none (see ``keyset_next_url`` for an answer that is not a cursor page). A cursor that
does not change would loop: it is refused too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import httpx

from lore_daemon.errors import GitLabBadResponseError, GitLabRequestError

from ._urls import Origin, strip_credentials


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def current_page(url: httpx.URL) -> int:
    """The ``page`` a request URL asks for (GitLab's default is 1)."""
    return _int_or_none(url.params.get("page")) or 1


def next_page_url(
    *,
    headers: Mapping[str, str],
    request_url: httpx.URL,
    count: int,
    per_page: int,
    origin: Origin,
    what: str,
    scrub: Callable[[str], str] = str,
) -> httpx.URL | None:
    """The URL of the page after the one just read, or None when the walk is over.

    ``what`` names the request (``GET /projects/1/issues``) for error messages; ``scrub`` removes
    the token from a foreign URL before it is quoted in one.
    """
    if count == 0:
        return None
    page = current_page(request_url)
    next_header = headers.get("x-next-page")
    if next_header is not None and (next_header.strip() == "" or _int_or_none(next_header) is not None):
        next_number = _int_or_none(next_header)
        if next_number is None:
            return None
        _check_forward(page, next_number, what)
        return request_url.copy_set_param("page", next_number)
    link_next = _link_next(headers)
    if link_next is not None:
        url = _on_gitlab(link_next, origin, what, scrub)
        _check_forward(page, current_page(url), what)
        return url
    served_per_page = _int_or_none(headers.get("x-per-page")) or per_page
    if count >= served_per_page:
        return request_url.copy_set_param("page", page + 1)
    return None


def _on_gitlab(link: str, origin: Origin, what: str, scrub: Callable[[str], str]) -> httpx.URL:
    """A ``Link`` URL to follow, refused when it leaves the configured GitLab (the token follows)."""
    if not origin.owns(link):
        shown = scrub(strip_credentials(link))
        raise GitLabRequestError(
            f"{what}: GitLab's Link rel=next points outside the configured GitLab "
            f"({shown}); refusing to send the token there",
            "GITLAB_REQUEST_FAILED",
            "Set gitlab.base_url to GitLab's external URL (the host GitLab puts in its links).",
            details={"link": shown, "baseUrl": origin.describe()},
        )
    return httpx.URL(link)


def _link_next(headers: Mapping[str, str]) -> str | None:
    raw = headers.get("link")
    if not raw:
        return None
    links = httpx.Response(200, headers={"link": raw}).links
    url = links.get("next", {}).get("url")
    return url or None


def _check_forward(page: int, next_number: int, what: str) -> None:
    if next_number <= page:
        raise GitLabBadResponseError(
            f"{what}: GitLab named page {next_number} as the next page after page {page}",
            "GITLAB_BAD_RESPONSE",
            "The server's pagination headers are inconsistent; retry, or report it to the GitLab admin.",
            details={"page": page, "nextPage": next_number},
        )


def is_offset_page(headers: Mapping[str, str]) -> bool:
    """Whether GitLab answered with offset pagination (it ignores ``pagination=keyset`` where it
    has no cursor order for the request, e.g. an unsupported ``order_by``)."""
    return "x-page" in headers or "x-next-page" in headers


def keyset_next_url(
    *,
    headers: Mapping[str, str],
    request_url: httpx.URL,
    pages_read: int,
    count: int,
    per_page: int,
    origin: Origin,
    what: str,
    scrub: Callable[[str], str] = str,
) -> tuple[httpx.URL | None, bool]:
    """After the ``pages_read``-th page of a walk that asked for cursor pages: the next URL, and
    whether GitLab is really answering with cursors.

    ``Link rel="next"`` with a ``cursor`` continues by cursor. A page with offset headers (or an
    offset ``Link``) means GitLab ignored the request: offset rules apply. A page with no
    pagination headers at all is ambiguous — the last cursor page, or an offset page whose headers
    a proxy stripped — so a full one is followed by offset page ``pages_read + 1`` without the
    cursor parameters, which is empty in the first case and the right page in the second.
    """
    link = _link_next(headers)
    cursor = httpx.URL(link).params.get("cursor") if link is not None else None
    if cursor is None:
        if is_offset_page(headers) or link is not None:
            return (
                next_page_url(
                    headers=headers, request_url=request_url, count=count, per_page=per_page,
                    origin=origin, what=what, scrub=scrub,
                ),
                False,
            )
        if count < per_page:
            return None, False
        plain = request_url.copy_remove_param("pagination").copy_remove_param("cursor")
        return plain.copy_set_param("page", pages_read + 1), False
    assert link is not None
    url = _on_gitlab(link, origin, what, scrub)
    if cursor == request_url.params.get("cursor"):
        raise GitLabBadResponseError(
            f"{what}: GitLab's next keyset page has the same cursor as this one",
            "GITLAB_BAD_RESPONSE",
            "The server's pagination links are inconsistent; retry, or report it to the GitLab admin.",
            details={"cursor": cursor},
        )
    return url, True
