"""List semantics of GitLab's offset pagination, filters and sorting (API-NOTES §1.4, §1.10).

- ``page`` (default 1), ``per_page`` (default 20, silently capped at 100).
- Headers X-Per-Page, X-Page, X-Next-Page (empty on the last page), X-Prev-Page, Link
  (prev, next, first, last — in that order), X-Total/X-Total-Pages only when the count is at or
  below the threshold; above it ``rel="last"`` goes too.
- ``updated_after``/``updated_before``/``created_*`` are inclusive; every order ends ``id DESC``.
- ``pagination=keyset`` (project issues only, GitLab >= 18.3, gitlab-org/gitlab MR 199887): the
  page after ``cursor`` in the same order, with only ``Link: <…cursor=…>; rel="next"`` while more
  items follow (no X-* headers, no totals). Elsewhere, or when the knob is off: 405.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from lore_daemon.sim.data import EntityTable, OrderedView
from lore_daemon.sim.wire import ApiError, Request, invalid_param, invalid_value
from lore_daemon.timeutil import iso_to_ms, ms_to_iso

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
ISSUE_STATES = ("opened", "closed", "all")
MR_STATES = ("opened", "closed", "locked", "merged", "all")
_HIDDEN_PARAMS = ("private_token", "access_token")  # never echoed back into Link URLs


@dataclass(frozen=True, slots=True)
class PageSpec:
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


@dataclass(frozen=True, slots=True)
class ListOptions:
    """Server-wide knobs that change pagination headers (set through the control API)."""

    base_url: str
    total_threshold: int
    omit_next_page_header: bool = False
    keyset: bool = False  # this listing pages by cursor when asked (project issues, newer GitLab)


KEYSET_UNAVAILABLE = {"error": "Keyset pagination is not yet available for this type of request"}


def page_spec(req: Request, *, keyset_ok: bool = False) -> PageSpec:
    if req.param("pagination") == "keyset" and not keyset_ok:
        raise ApiError(405, KEYSET_UNAVAILABLE)
    page = _int_param(req, "page", 1)
    per_page = _int_param(req, "per_page", DEFAULT_PER_PAGE)
    return PageSpec(max(page, 1), min(per_page, MAX_PER_PAGE) if per_page >= 1 else DEFAULT_PER_PAGE)


def _int_param(req: Request, name: str, default: int) -> int:
    raw = req.param(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise invalid_param(name) from None


def paginate(
    req: Request, items: Sequence[Any], opts: ListOptions
) -> tuple[list[Any], list[tuple[str, str]]]:
    """Slice a fully known list and build its headers (dependents: discussions, events, diffs)."""
    spec = page_spec(req)
    return list(items[spec.offset : spec.offset + spec.per_page]), headers(req, spec, len(items), opts)


def headers(req: Request, spec: PageSpec, total: int, opts: ListOptions) -> list[tuple[str, str]]:
    """The exact pagination header set for a page of a list of ``total`` items."""
    has_next = spec.offset + spec.per_page < total
    in_range = spec.offset < total or spec.page == 1
    prev_page = spec.page - 1 if spec.page > 1 and in_range else None
    show_total = total <= opts.total_threshold
    total_pages = max(1, math.ceil(total / spec.per_page))
    out = [("X-Per-Page", str(spec.per_page)), ("X-Page", str(spec.page))]
    if not opts.omit_next_page_header:
        out.append(("X-Next-Page", str(spec.page + 1) if has_next else ""))
    out.append(("X-Prev-Page", str(prev_page) if prev_page else ""))
    if show_total:
        out += [("X-Total", str(total)), ("X-Total-Pages", str(total_pages))]
    if not opts.omit_next_page_header:
        links = []
        if prev_page:
            links.append((prev_page, "prev"))
        if has_next:
            links.append((spec.page + 1, "next"))
        links.append((1, "first"))
        if show_total:
            links.append((total_pages, "last"))
        out.append(
            (
                "Link",
                ", ".join(f'<{_page_url(req, opts, n, spec.per_page)}>; rel="{rel}"' for n, rel in links),
            )
        )
    return out


def _page_url(req: Request, opts: ListOptions, page: int, per_page: int) -> str:
    """The request URL with all its params plus page/per_page, re-encoded like Rails ``to_query``."""
    return _url_with(req, opts, {"page": str(page), "per_page": str(per_page)})


def _url_with(req: Request, opts: ListOptions, extra: dict[str, str]) -> str:
    scalars: dict[str, str] = {}
    arrays: dict[str, list[str]] = {}
    for key, value in req.query:
        if key.endswith("[]"):
            arrays.setdefault(key, []).append(value)
        elif key not in _HIDDEN_PARAMS:
            scalars[key] = value
    scalars.update(extra)
    parts = [f"{quote_plus(k)}={quote_plus(v)}" for k, v in scalars.items()]
    parts += ["&".join(f"{quote_plus(k)}={quote_plus(v)}" for v in vs) for k, vs in arrays.items()]
    return f"{opts.base_url}{req.path}?{'&'.join(sorted(parts))}"


def parse_time(req: Request, name: str, *, upper: bool) -> int | None:
    """An ISO-8601 query time as epoch ms; lower bounds round up, upper bounds down (inclusive)."""
    raw = req.param(name)
    if raw is None or raw == "":
        return None
    text = raw.strip()
    if " " in raw or not text:
        raise invalid_param(name)  # a '+' sent unencoded arrives as a space (API-NOTES §1.0)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid_param(name) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    micros = (when - datetime(1970, 1, 1, tzinfo=UTC)) // _MICRO
    return micros // 1000 if upper else -(-micros // 1000)


_MICRO = datetime(1970, 1, 1, 0, 0, 0, 1) - datetime(1970, 1, 1)


def select_entities(
    req: Request, table: EntityTable, opts: ListOptions
) -> tuple[list[int], list[tuple[str, str]]]:
    """The iids of one page of an issue/MR list, and its headers."""
    order_by = req.param("order_by") or "created_at"
    if order_by not in ("created_at", "updated_at"):
        raise invalid_value("order_by")
    sort = req.param("sort") or "desc"
    if sort not in ("asc", "desc"):
        raise invalid_value("sort")
    state = req.param("state") or "all"
    if state not in (ISSUE_STATES if table.kind == "issue" else MR_STATES):
        raise invalid_value("state")
    iid_filter = _iids(req)
    keyset = opts.keyset and req.param("pagination") == "keyset"
    spec = page_spec(req, keyset_ok=keyset)
    bounds = {
        col: (parse_time(req, f"{col}_after", upper=False), parse_time(req, f"{col}_before", upper=True))
        for col in ("updated", "created")
    }
    view = table.view(order_by, sort)
    lo, hi = view.date_range(*bounds[order_by.removesuffix("_at")])
    checks: list[Callable[[int], bool]] = []
    other = "created" if order_by == "updated_at" else "updated"
    after, before = bounds[other]
    column = table.created if other == "created" else table.updated
    if after is not None:
        checks.append(lambda i: column[i] >= after)
    if before is not None:
        checks.append(lambda i: column[i] <= before)
    if state != "all":
        states = table.state
        checks.append(lambda i: states[i] == state)
    if iid_filter is not None:
        checks.append(iid_filter.__contains__)
    if keyset:
        return _keyset_page(req, table, opts, view, (lo, hi), checks, order_by, sort, spec.per_page)
    if checks:
        matched = [i for i in view.iids[lo:hi] if all(check(i) for check in checks)]
        total, page_iids = len(matched), matched[spec.offset : spec.offset + spec.per_page]
    else:
        total = hi - lo
        start = lo + spec.offset
        page_iids = view.iids[start : min(hi, start + spec.per_page)]
    return page_iids, headers(req, spec, total, opts)


def _iids(req: Request) -> set[int] | None:
    values = req.params("iids")
    if not values:
        return None
    try:
        return {int(v) for v in values}
    except ValueError:
        raise invalid_param("iids") from None


def _keyset_page(
    req: Request,
    table: EntityTable,
    opts: ListOptions,
    view: OrderedView,
    bounds: tuple[int, int],
    checks: list[Callable[[int], bool]],
    order_by: str,
    sort: str,
    per_page: int,
) -> tuple[list[int], list[tuple[str, str]]]:
    """One cursor page: the items after the cursor's (value, id) in the list's order."""
    column = table.created if order_by == "created_at" else table.updated
    lo, hi = bounds
    cursor = req.param("cursor")
    if cursor:
        value, gid = _decode_cursor(cursor, order_by)
        sign = 1 if sort == "asc" else -1  # ascending: (value, -id); descending: (-value, -id)
        lo = max(lo, bisect.bisect_right(view.iids, (sign * value, -gid), lo, hi,
                                          key=lambda i: (sign * column[i], -table.gid(i))))
    page: list[int] = []
    more = False
    for idx in range(lo, hi):
        i = view.iids[idx]
        if all(check(i) for check in checks):
            if len(page) == per_page:
                more = True
                break
            page.append(i)
    headers: list[tuple[str, str]] = []
    if more:
        last = page[-1]
        token = _encode_cursor(order_by, column[last], table.gid(last))
        url = _url_with(req, opts, {"cursor": token, "per_page": str(per_page)})
        headers.append(("Link", f'<{url}>; rel="next"'))
    return page, headers


def _encode_cursor(order_by: str, value_ms: int, gid: int) -> str:
    """GitLab's cursor: base64 of the last row's order values (``_kd`` = direction marker)."""
    raw = json.dumps({order_by: ms_to_iso(value_ms), "id": str(gid), "_kd": "n"}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(token: str, order_by: str) -> tuple[int, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
        return iso_to_ms(data[order_by]), int(data["id"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid_param("cursor") from None
