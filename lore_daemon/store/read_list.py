"""``lore/list``: issues and MRs of the mirror by filters, in keyset pages (SPEC §12).

Order: the sort column (``updated_at`` or ``created_at``), then the kind (issues before MRs),
then the GitLab id: a total order, since ids are unique per kind. A page is the first ``limit``
rows strictly after the previous page's last ``(value, kind, id)`` — never an offset — so rows a
sync inserts or updates elsewhere cannot shift a page onto rows already returned, nor past rows
not yet returned. Issues and MRs are two index-ordered arms merged by one ``UNION ALL ... ORDER
BY ... LIMIT``; each arm turns the cursor into a range on its own index.

``nextCursor`` is opaque: ``v1.`` + base64url of ``[value, kind rank, id, fingerprint]``, where
the fingerprint ties it to the filters, sort and order it was issued for (a cursor sent with
other filters is rejected, not silently misapplied). It is present exactly when more rows match.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import apsw
import msgspec

from lore_daemon.errors import InvalidParamsError
from lore_daemon.protocol import EntityKind
from lore_daemon.protocol_read import EntitySummary, ListParams, ListResult
from lore_daemon.store.read_common import snapshot, stamp
from lore_daemon.store.read_filters import EntityFilter, conditions, entity_filter, table_of

SORT_COLUMNS = {"updated": "updated_at", "created": "created_at"}
KIND_RANK: dict[EntityKind, int] = {"issue": 0, "mr": 1}
RANK_KIND: dict[int, EntityKind] = {rank: kind for kind, rank in KIND_RANK.items()}
_LABELS = {
    "issue": "SELECT issue_id, label FROM issue_labels WHERE issue_id IN (SELECT value FROM json_each(?))",
    "mr": "SELECT merge_request_id, label FROM mr_labels "
    "WHERE merge_request_id IN (SELECT value FROM json_each(?))",
}
_CURSOR_PREFIX = "v1."


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: the last row's sort value, kind rank and GitLab id."""

    value: int
    rank: int
    gitlab_id: int


def fingerprint(f: EntityFilter, sort: str, order: str) -> str:
    """A short digest of what a cursor is valid for (the resolved filters, sort and order)."""
    return hashlib.blake2b(repr((f, sort, order)).encode(), digest_size=6).hexdigest()


def encode_cursor(position: Position, print_: str) -> str:
    body = msgspec.json.encode([position.value, position.rank, position.gitlab_id, print_])
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(body).decode().rstrip("=")


def decode_cursor(text: str, print_: str) -> Position:
    """The position a cursor names; ``INVALID_PARAMS`` when it is not one issued for this query."""
    try:
        if not text.startswith(_CURSOR_PREFIX):
            raise ValueError("prefix")
        body = text[len(_CURSOR_PREFIX):]
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        value, rank, gitlab_id, issued_for = msgspec.json.decode(raw, type=tuple[int, int, int, str])
        if rank not in RANK_KIND:
            raise ValueError("rank")
    except (ValueError, binascii.Error, msgspec.DecodeError, msgspec.ValidationError):
        raise _bad_cursor(
            "is not a cursor this daemon issued", "Send the nextCursor of a previous page as is."
        ) from None
    if issued_for != print_:
        raise _bad_cursor(
            "was issued for other filters, sort or order",
            "Page with the same filters, sort and order as the first page, or start again without cursor.",
        )
    return Position(value, rank, gitlab_id)


def _bad_cursor(why: str, suggestion: str) -> InvalidParamsError:
    return InvalidParamsError(
        f"Invalid params for lore/list at $.cursor: the cursor {why}.",
        "INVALID_PARAMS",
        suggestion,
        details={"method": "lore/list", "path": "$.cursor", "reason": f"the cursor {why}"},
    )


def _after(kind: EntityKind, column: str, position: Position, descending: bool) -> tuple[str, list[Any]]:
    """The cursor as a range on one arm (its kind rank is a constant there)."""
    rank = KIND_RANK[kind]
    op = "<" if descending else ">"
    if rank == position.rank:
        return f"(e.{column}, e.gitlab_id) {op} (?, ?)", [position.value, position.gitlab_id]
    before = rank < position.rank if descending else rank > position.rank
    return f"e.{column} {op}{'=' if before else ''} ?", [position.value]


def list_page(conn: apsw.Connection, params: ListParams) -> ListResult:
    """One page of summaries and the cursor of the next one (None when nothing more matches)."""
    with snapshot(conn):
        f = entity_filter(conn, params)
        print_ = fingerprint(f, params.sort, params.order)
        after = decode_cursor(params.cursor, print_) if params.cursor is not None else None
        if f.matches_nothing:
            return ListResult(items=[], next_cursor=None)
        column = SORT_COLUMNS[params.sort]
        descending = params.order == "desc"
        arms: list[str] = []
        values: list[Any] = []
        for kind in f.kinds:
            terms, arm_values = conditions(f, kind)
            if after is not None:
                term, cursor_values = _after(kind, column, after, descending)
                terms.append(term)
                arm_values.extend(cursor_values)
            where = " AND ".join(terms) or "1"
            arms.append(
                f"SELECT e.{column}, {KIND_RANK[kind]}, e.gitlab_id, e.iid, p.path_with_namespace, e.title, "  # noqa: S608
                "e.state, e.author_username, e.created_at, e.updated_at, e.web_url, e.user_notes_count "
                f"FROM {table_of(kind)} AS e JOIN projects AS p ON p.gitlab_id = e.project_id WHERE {where}"
            )
            values.extend(arm_values)
        direction = "DESC" if descending else "ASC"
        # One arm: its rank is a constant, and naming it in ORDER BY would stop SQLite from
        # reading the index in order (it would sort every matching row instead).
        order_by = f"1 {direction}, 3 {direction}"
        if len(arms) > 1:
            order_by = f"1 {direction}, 2 {direction}, 3 {direction}"
        sql = " UNION ALL ".join(arms) + f" ORDER BY {order_by} LIMIT ?"
        rows = conn.execute(sql, (*values, params.limit + 1)).fetchall()
        page = rows[: params.limit]
        labels = _labels(conn, page)
        items = [_summary(row, labels) for row in page]
        next_cursor = None
        if len(rows) > params.limit:
            last = page[-1]
            next_cursor = encode_cursor(Position(int(last[0]), int(last[1]), int(last[2])), print_)  # type: ignore[arg-type]
        return ListResult(items=items, next_cursor=next_cursor)


def _labels(conn: apsw.Connection, rows: Sequence[Sequence[Any]]) -> dict[tuple[int, int], list[str]]:
    """Labels of the page's rows, by (kind rank, GitLab id), sorted by name."""
    ids: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        ids[int(row[1])].append(int(row[2]))
    found: dict[tuple[int, int], list[str]] = defaultdict(list)
    for rank, gitlab_ids in ids.items():
        encoded = msgspec.json.encode(gitlab_ids).decode()
        for owner, label in conn.execute(_LABELS[RANK_KIND[rank]], (encoded,)):
            found[(rank, int(owner))].append(str(label))
    return {key: sorted(names) for key, names in found.items()}


def _summary(row: Sequence[Any], labels: dict[tuple[int, int], list[str]]) -> EntitySummary:
    _, rank, gitlab_id, iid, project, title, state, author, created, updated, web_url, notes = row
    return EntitySummary(
        kind=RANK_KIND[int(rank)],
        iid=int(iid),
        project=str(project),
        title=str(title),
        state=str(state),
        labels=labels.get((int(rank), int(gitlab_id)), []),
        author=author,
        created_at=stamp(created),
        updated_at=stamp(updated),
        web_url=str(web_url),
        notes_count=int(notes),
    )
