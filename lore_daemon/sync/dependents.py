"""Dependents of one issue or MR: fetch them from GitLab, then write them in one go.

Shared by both pipelines. The standard sync drives it from ``pending_dependent_fetches`` (one job
per stage); the surgical sync calls it inline per target and never touches that queue. Fetching
and writing are split so the network part runs concurrently on the event loop while the write part
runs on the database writer thread, inside a transaction the *caller* opens:

    fetched = await fetch_dependents(client, project_id, "mr", 34, STAGES_FOR["mr"])
    written = write_dependents(conn, fetched, parent_id=mr_gitlab_id,
                               parent_updated_at_ms=mr_updated_at_ms, now_ms=now)   # in `with conn:`

Stage names are the wire's ``FailureStage`` names (``discussions``, ``events``, ``closesIssues``,
``diffs``). A stage that failed to fetch is reported with its ``GitLabError`` and leaves the store
(rows and watermark) untouched, so the next attempt still sees it as behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import apsw

from lore_daemon import protocol
from lore_daemon.errors import GitLabError, LoreError
from lore_daemon.gitlab.client import GitLabClient
from lore_daemon.gitlab.models import ClosesIssues, Discussion, LabelEvent, MilestoneEvent, MrDiff, StateEvent
from lore_daemon.store import dependents as store_dependents
from lore_daemon.store.keys import SourceKey

EntityKind = Literal["issue", "mr"]
Stage = protocol.FailureStage

STAGES_FOR: Final[dict[str, tuple[protocol.FailureStage, ...]]] = {
    "issue": ("discussions", "events"),
    "mr": ("discussions", "events", "closesIssues", "diffs"),
}
"""The dependent stages of each entity kind, in the order they are written."""

JOB_TYPE_FOR_STAGE: Final[dict[str, str]] = {
    "discussions": "discussions",
    "events": "resource_events",
    "closesIssues": "mr_closes_issues",
    "diffs": "mr_diffs",
}
"""Stage → ``pending_dependent_fetches.job_type``."""

STAGE_FOR_JOB_TYPE: Final[dict[str, protocol.FailureStage]] = {
    "discussions": "discussions",
    "resource_events": "events",
    "mr_closes_issues": "closesIssues",
    "mr_diffs": "diffs",
}
"""``job_type`` → stage (inverse of ``JOB_TYPE_FOR_STAGE``)."""

WATERMARK_FOR_STAGE: Final[dict[str, store_dependents.DependentName]] = {
    "discussions": "discussions",
    "events": "events",
    "closesIssues": "closes_issues",
    "diffs": "diffs",
}
"""Stage → the ``<name>_synced_for_updated_at`` watermark it advances."""


@dataclass(frozen=True, slots=True)
class ResourceEvents:
    """The ``events`` stage payload: all three resource-event kinds of one parent."""

    state: list[StateEvent]
    label: list[LabelEvent]
    milestone: list[MilestoneEvent]


@dataclass
class FetchedDependents:
    """What ``fetch_dependents`` got for one parent: a payload or an error per requested stage.

    ``results`` values by stage: ``discussions`` → ``list[Discussion]``, ``events`` →
    ``ResourceEvents``, ``closesIssues`` → ``ClosesIssues``, ``diffs`` → ``list[MrDiff]``.
    """

    kind: EntityKind
    iid: int
    project_id: int
    results: dict[Stage, Any] = field(default_factory=dict)
    errors: dict[Stage, GitLabError] = field(default_factory=dict)

    def failures(self) -> list[protocol.EntityFailure]:
        """One ``EntityFailure`` per failed stage, in stage order."""
        return [
            failure_of(self.kind, self.iid, stage, error)
            for stage, error in sorted(self.errors.items(), key=lambda kv: _stage_rank(kv[0]))
        ]


@dataclass
class DependentCounts:
    """Rows now stored for the written stages (what run counters report)."""

    discussions: int = 0
    notes: int = 0
    events: int = 0
    closes_links: int = 0
    file_changes: int = 0

    def add_to(self, counters: protocol.Counters) -> None:
        counters.discussions += self.discussions
        counters.notes += self.notes
        counters.events += self.events
        counters.closes_links += self.closes_links
        counters.file_changes += self.file_changes


@dataclass
class DependentsWritten:
    """What ``write_dependents`` did: an outcome per stage and the source keys it dirtied."""

    outcomes: dict[str, protocol.DependentOutcome]
    touched: frozenset[SourceKey]
    counts: DependentCounts


def failure_of(
    kind: EntityKind, iid: int, stage: protocol.FailureStage, error: LoreError
) -> protocol.EntityFailure:
    """The wire form of one failed stage (never carries a secret: messages are scrubbed upstream)."""
    return protocol.EntityFailure(
        kind=kind,
        iid=iid,
        stage=stage,
        code=error.code,
        message=error.message,
        http_status=error.http_status,
        retryable=error.retryable,
    )


def _stage_rank(stage: str) -> int:
    order = STAGES_FOR["mr"]
    return order.index(stage) if stage in order else len(order)


def _check_stages(kind: EntityKind, stages: Iterable[str]) -> list[Stage]:
    allowed = STAGES_FOR[kind]
    wanted: list[Stage] = []
    for name in dict.fromkeys(stages):
        stage = next((s for s in allowed if s == name), None)
        if stage is None:
            raise LoreError(f"{name!r} is not a dependent stage of a {kind}", "INTERNAL")
        wanted.append(stage)
    return sorted(wanted, key=_stage_rank)


async def _fetch_events(client: GitLabClient, project_id: int, kind: EntityKind, iid: int) -> ResourceEvents:
    """The three event kinds concurrently; the first GitLab failure fails the whole stage."""
    got = await asyncio.gather(
        client.list_resource_events(project_id, kind, iid, "state"),
        client.list_resource_events(project_id, kind, iid, "label"),
        client.list_resource_events(project_id, kind, iid, "milestone"),
        return_exceptions=True,
    )
    for outcome in got:
        if isinstance(outcome, BaseException):
            raise outcome
    state, label, milestone = got
    return ResourceEvents(state, label, milestone)  # type: ignore[arg-type]


def _stage_call(
    client: GitLabClient, project_id: int, kind: EntityKind, iid: int, stage: str
) -> Awaitable[Any]:
    if stage == "discussions":
        return client.list_discussions(project_id, kind, iid)
    if stage == "events":
        return _fetch_events(client, project_id, kind, iid)
    if stage == "closesIssues":
        return client.list_closes_issues(project_id, iid)
    return client.list_mr_diffs(project_id, iid)


async def fetch_dependents(
    client: GitLabClient, project_id: int, kind: EntityKind, iid: int, stages: Iterable[str]
) -> FetchedDependents:
    """Fetch the named stages of one parent, all concurrently; never raises for a GitLab failure.

    Each stage's ``GitLabError`` lands in ``errors`` and the others still complete (dependents are
    best effort). Concurrency is bounded by the client's shared in-flight limit. Anything that is
    not a GitLab failure (a bug, or cancellation) propagates.
    """
    wanted = _check_stages(kind, stages)
    fetched = FetchedDependents(kind=kind, iid=iid, project_id=project_id)
    if not wanted:
        return fetched
    got = await asyncio.gather(
        *(_stage_call(client, project_id, kind, iid, stage) for stage in wanted), return_exceptions=True
    )
    unexpected: BaseException | None = None
    for stage, outcome in zip(wanted, got, strict=True):
        if isinstance(outcome, GitLabError):
            fetched.errors[stage] = outcome
        elif isinstance(outcome, BaseException):
            unexpected = unexpected or outcome
        else:
            fetched.results[stage] = outcome
    if unexpected is not None:
        raise unexpected
    return fetched


def write_dependents(
    conn: apsw.Connection,
    fetched: FetchedDependents,
    *,
    parent_id: int,
    parent_updated_at_ms: int,
    now_ms: int,
    stages: Iterable[str] | None = None,
    cancel: Callable[[], None] | None = None,
) -> DependentsWritten:
    """Write every successfully fetched stage (or only ``stages``) and advance its watermark.

    ``conn`` must already be in a transaction: a failure (or ``cancel()`` raising, which is called
    before each stage) rolls back everything this call wrote. ``parent_id`` is the issue's or MR's
    GitLab id; ``parent_updated_at_ms`` the parent version the payloads bring the watermarks up to
    (watermarks never move backwards). Failed stages get outcome ``failed`` and are not touched.
    """
    selected = set(fetched.results) | set(fetched.errors)
    if stages is not None:
        selected &= set(stages)
    outcomes: dict[str, protocol.DependentOutcome] = {}
    touched: set[SourceKey] = set()
    counts = DependentCounts()
    for stage in sorted(selected, key=_stage_rank):
        if stage in fetched.errors:
            outcomes[stage] = "failed"
            continue
        if cancel is not None:
            cancel()
        write = _write_stage(conn, fetched, stage, parent_id, now_ms, counts)
        store_dependents.set_watermark(
            conn, fetched.kind, parent_id, WATERMARK_FOR_STAGE[stage], parent_updated_at_ms
        )
        touched |= write.touched
        outcomes[stage] = "synced" if write.changed else "unchanged"
    return DependentsWritten(outcomes=outcomes, touched=frozenset(touched), counts=counts)


def _write_stage(
    conn: apsw.Connection,
    fetched: FetchedDependents,
    stage: Stage,
    parent_id: int,
    now_ms: int,
    counts: DependentCounts,
) -> store_dependents.DependentWrite:
    payload = fetched.results[stage]
    pid = fetched.project_id
    if stage == "discussions":
        discussions: list[Discussion] = payload
        write = store_dependents.replace_discussions(
            conn, project_id=pid, parent_kind=fetched.kind, parent_id=parent_id,
            discussions=discussions, now_ms=now_ms,
        )
        counts.discussions += write.discussions
        counts.notes += write.notes
        return write
    if stage == "events":
        events: ResourceEvents = payload
        write = store_dependents.replace_resource_events(
            conn, project_id=pid, parent_kind=fetched.kind, parent_id=parent_id,
            state=events.state, label=events.label, milestone=events.milestone,
        )
        counts.events += write.rows
        return write
    if stage == "closesIssues":
        closes: ClosesIssues = payload  # external tracker items (closes.external) are not stored yet
        write = store_dependents.replace_closes_issues(
            conn, project_id=pid, mr_id=parent_id, issues=closes.internal, now_ms=now_ms
        )
        counts.closes_links += write.rows
        return write
    diffs: list[MrDiff] = payload
    write = store_dependents.replace_mr_diffs(conn, mr_id=parent_id, diffs=diffs, now_ms=now_ms)
    counts.file_changes += write.rows
    return write
