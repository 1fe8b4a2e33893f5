"""Standard sync, phase ``ingest``: incremental listing of one project's issues, then its MRs.

Listing asks GitLab for ``updated_after = cursor.updated_at - REWIND_MS`` in ``updated_at ASC``
order (GitLab breaks ties by ``id DESC``). Items the tuple cursor covers were committed by an
earlier run and are dropped before any write. Each remaining item is ONE transaction — a savepoint,
SQLite's nested transaction — holding its raw payload, row, links, dirty mark and dependent jobs
(``store.entities``), plus the cursor when it may advance; the items of a page share commits
(``sync/batched.py``), because a commit per item was half of this phase's cost.

Cursor rule. Because ties come in ``id DESC`` order, "the last committed item" is not a safe
cursor: an interrupted walk could leave a same-``updated_at`` item with a lower id unprocessed
while the cursor already covers it. The cursor therefore only advances over *complete*
``updated_at`` groups: when the first item of a newer group commits, the cursor moves (in that same
transaction) to the previous group's ``(updated_at, max id)``; after the walk ends, to the last
group's. Every item the cursor covers is committed — never more.

Pages stream through (at most ``PREFETCH_PAGES`` ahead of the writer), and each page goes to the
writer thread in one hop that loops items, so memory stays flat however big the project is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import apsw

from lore_daemon.gitlab.models import Fetched, Project
from lore_daemon.store.cursors import Cursor, Resource, advance_cursor, read_cursor
from lore_daemon.store.entities import (
    IngestOutcome,
    IngestStatus,
    ingest_issue,
    ingest_merge_request,
    upsert_project,
)
from lore_daemon.store.ingest_group import ingest_group
from lore_daemon.sync.batched import write_in_groups
from lore_daemon.sync.context import RunCancelled, RunContext
from lore_daemon.sync.locking import HeldLock
from lore_daemon.sync.write_clock import WriteClock
from lore_daemon.timeutil import iso_to_ms, ms_to_iso, now_ms

log = logging.getLogger(__name__)

REWIND_MS = 2_000
PREFETCH_PAGES = 2
TRANSACTION_BUDGET_S = 0.05

T = TypeVar("T")
Item = Fetched[Any]  # Fetched[Issue] or Fetched[MergeRequest], by resource


@dataclass
class CursorWalk:
    """Tracks which cursor is safe to persist while items arrive in GitLab's listing order."""

    start: Cursor | None
    group_updated: int | None = None
    group_max_id: int = 0

    def covered(self, updated_at: int, gitlab_id: int) -> bool:
        return self.start is not None and self.start.covers(updated_at, gitlab_id)

    def step(self, updated_at: int, gitlab_id: int) -> Cursor | None:
        """Account for one item; returns the cursor its commit makes safe (a group just closed)."""
        if self.group_updated is None or updated_at > self.group_updated:
            closed = None if self.group_updated is None else Cursor(self.group_updated, self.group_max_id)
            self.group_updated, self.group_max_id = updated_at, gitlab_id
            return closed
        if updated_at == self.group_updated:
            self.group_max_id = max(self.group_max_id, gitlab_id)
        return None  # an older item (the listing shifted under a concurrent update): no change

    def snapshot(self) -> tuple[int | None, int]:
        return (self.group_updated, self.group_max_id)

    def restore(self, saved: tuple[int | None, int]) -> None:
        self.group_updated, self.group_max_id = saved

    def final(self) -> Cursor | None:
        """The cursor after a complete walk: the last group is complete too."""
        return None if self.group_updated is None else Cursor(self.group_updated, self.group_max_id)


@dataclass
class PageOutcome:
    ingested: int = 0
    unchanged: int = 0
    skipped_stale: int = 0

    def count(self, status: IngestStatus) -> None:
        if status == "ingested":
            self.ingested += 1
        elif status == "unchanged":
            self.unchanged += 1
        else:
            self.skipped_stale += 1

    def add(self, other: PageOutcome) -> None:
        self.ingested += other.ingested
        self.unchanged += other.unchanged
        self.skipped_stale += other.skipped_stale


def _write_page(
    conn: apsw.Connection,
    ctx: RunContext,
    project_id: int,
    resource: Resource,
    items: Sequence[Item],
    walk: CursorWalk,
) -> PageOutcome:
    """One writer-thread hop per page: the whole page in one transaction, set-based
    (``store.ingest_group``), with the cursor where the walk allows; if that path does not take
    the page or raises, the transaction rolls back and the page is written item by item."""
    ctx.check_cancelled()
    saved = walk.snapshot()
    try:
        with conn:
            outcome = _write_page_at_once(conn, project_id, resource, items, walk)
    except Exception as exc:  # rolled back: each item is written, and fails, on its own below
        log.warning("page written item by item after %s in the set-based path", type(exc).__name__)
        outcome = None
    if outcome is not None:
        return outcome
    walk.restore(saved)
    return _write_items(conn, ctx, project_id, resource, items, walk)


def _write_page_at_once(
    conn: apsw.Connection, project_id: int, resource: Resource, items: Sequence[Item], walk: CursorWalk
) -> PageOutcome | None:
    now = now_ms()
    results = ingest_group(conn, "issue" if resource == "issues" else "mr", project_id, items, now_ms=now)
    if results is None:
        return None
    outcome = PageOutcome()
    safe: Cursor | None = None
    for result in results:
        safe = walk.step(result.updated_at_ms, result.gitlab_id) or safe
        outcome.count(result.status)
    if safe is not None:
        advance_cursor(conn, project_id, resource, safe, now_ms=now)
    return outcome


def _write_items(
    conn: apsw.Connection,
    ctx: RunContext,
    project_id: int,
    resource: Resource,
    items: Sequence[Item],
    walk: CursorWalk,
) -> PageOutcome:
    """Each item its own transaction (a savepoint: all of its writes, and the cursor when it may
    advance, or nothing); the items share commits (``sync/batched.py``). The cancel flag is checked
    inside each item's savepoint, so a cancel rolls back the open item and keeps, committed, the
    ones before it."""
    outcome = PageOutcome()
    group = PageOutcome()  # the items of the open transaction, counted once it commits
    group_walk = walk.snapshot()

    def write_item(fetched: Item) -> None:
        saved = walk.snapshot()
        now = now_ms()
        try:
            ctx.check_cancelled()  # the safe point: raising here rolls this item back
            result: IngestOutcome
            if resource == "issues":
                result = ingest_issue(conn, project_id, fetched, now_ms=now)
            else:
                result = ingest_merge_request(conn, project_id, fetched, now_ms=now)
            safe = walk.step(result.updated_at_ms, result.gitlab_id)
            if safe is not None:
                advance_cursor(conn, project_id, resource, safe, now_ms=now)
        except BaseException:
            walk.restore(saved)  # the item rolled back: so does the walk
            raise
        group.count(result.status)

    def committed() -> None:
        nonlocal group, group_walk
        outcome.add(group)
        group, group_walk = PageOutcome(), walk.snapshot()

    def lost() -> None:  # the commit failed: none of the group's items happened
        nonlocal group
        walk.restore(group_walk)
        group = PageOutcome()

    write_in_groups(
        conn, items, write_item, per_transaction=ctx.tuning.items_per_transaction,
        budget_s=TRANSACTION_BUDGET_S, on_group_committed=committed, on_group_lost=lost,
    )
    return outcome


def _finish_walk(conn: apsw.Connection, project_id: int, resource: Resource, cursor: Cursor) -> None:
    with conn:
        advance_cursor(conn, project_id, resource, cursor, now_ms=now_ms())


def _upsert_project(conn: apsw.Connection, project: Project) -> None:
    with conn:
        upsert_project(conn, project, now_ms=now_ms())


async def _prefetch(pages: AsyncIterator[list[T]], depth: int) -> AsyncGenerator[list[T], None]:
    """Keep up to ``depth`` pages in flight while the caller writes the previous one."""
    queue: asyncio.Queue[list[T] | BaseException | None] = asyncio.Queue(maxsize=depth)

    async def produce() -> None:
        try:
            async for page in pages:
                await queue.put(page)
            await queue.put(None)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            await queue.put(exc)

    producer = asyncio.create_task(produce(), name="lore-ingest-prefetch")
    try:
        while True:
            got = await queue.get()
            if got is None:
                return
            if isinstance(got, BaseException):
                raise got
            yield got
    finally:
        producer.cancel()
        await asyncio.gather(producer, return_exceptions=True)
        aclose = getattr(pages, "aclose", None)
        if aclose is not None:
            await aclose()


async def ingest_project(ctx: RunContext, project: Project, held: HeldLock, clock: WriteClock) -> None:
    """Record the project, then walk its issues and MRs incrementally."""
    await clock.write(ctx, "ingest", _upsert_project, project)
    for resource in ("issues", "merge_requests"):
        await _ingest_resource(ctx, project, resource, held, clock)


async def _ingest_resource(
    ctx: RunContext,
    project: Project,
    resource: Literal["issues", "merge_requests"],
    held: HeldLock,
    clock: WriteClock,
) -> None:
    client = ctx.engine.gitlab
    start = await ctx.engine.db.read(read_cursor, project.id, resource)
    walk = CursorWalk(start)
    updated_after = None if start is None else ms_to_iso(max(0, start.updated_at - REWIND_MS))
    listing: AsyncIterator[list[Item]]
    if resource == "issues":
        listing = client.iter_issues(project.id, updated_after=updated_after)
    else:
        listing = client.iter_merge_requests(project.id, updated_after=updated_after)
    async with aclosing(_prefetch(listing, PREFETCH_PAGES)) as pages:
        async for page in pages:
            await _ingest_page(ctx, project, resource, page, walk, held, clock)
    final = walk.final()
    if final is not None and (start is None or final > start):
        await clock.write(ctx, "ingest", _finish_walk, project.id, resource, final)


async def _ingest_page(
    ctx: RunContext,
    project: Project,
    resource: Resource,
    page: list[Item],
    walk: CursorWalk,
    held: HeldLock,
    clock: WriteClock,
) -> None:
    if ctx.cancel_event.is_set():
        raise RunCancelled("The run was cancelled.", "CANCELLED", "Retry the run when ready.")
    held.ensure_held()
    fresh = [f for f in page if not walk.covered(iso_to_ms(f.item.updated_at), f.item.id)]
    if not fresh:
        return
    issues = resource == "issues"
    if issues:
        ctx.counters.issues_fetched += len(fresh)
    else:
        ctx.counters.mrs_fetched += len(fresh)
    outcome = await clock.write(ctx, "ingest", _write_page, ctx, project.id, resource, fresh, walk)
    if issues:
        ctx.counters.issues_ingested += outcome.ingested
    else:
        ctx.counters.mrs_ingested += outcome.ingested
    ctx.counters.unchanged += outcome.unchanged
    ctx.counters.skipped_stale += outcome.skipped_stale
    fetched = ctx.counters.issues_fetched if issues else ctx.counters.mrs_fetched
    label = "issues" if issues else "merge requests"
    ctx.report_throttled(f"{project.path_with_namespace}: {fetched} {label} fetched")
