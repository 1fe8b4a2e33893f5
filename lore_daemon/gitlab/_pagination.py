"""Offset-pagination walking rules for GitLab list endpoints.

GitLab's totals (``X-Total``, ``X-Total-Pages``, ``rel="last"``) vanish above 10,000 items and
proxies sometimes strip headers, so the next page is decided only from what each page says:

1. an empty page ends the walk;
2. ``X-Next-Page`` present: a number is the next page, an empty value means "last page";
3. else ``Link: <...>; rel="next"``, followed only when it stays on the configured GitLab;
4. else, when the page was full (``len == X-Per-Page``, or the ``per_page`` we asked for), ask
   for the following page anyway; a short page ends the walk.

A next page that does not move forward is a server bug that would loop forever: it is refused.
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
        if not origin.owns(link_next):
            shown = scrub(strip_credentials(link_next))
            raise GitLabRequestError(
                f"{what}: GitLab's Link rel=next points outside the configured GitLab "
                f"({shown}); refusing to send the token there",
                "GITLAB_REQUEST_FAILED",
                "Set gitlab.base_url to GitLab's external URL (the host GitLab puts in its links).",
                details={"link": shown, "baseUrl": origin.describe()},
            )
        url = httpx.URL(link_next)
        _check_forward(page, current_page(url), what)
        return url
    served_per_page = _int_or_none(headers.get("x-per-page")) or per_page
    if count >= served_per_page:
        return request_url.copy_set_param("page", page + 1)
    return None


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
