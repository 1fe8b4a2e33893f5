"""Surgical preflight: the remote check before any write, and the local-only dry-run report.

The remote half fetches every requested primary payload concurrently (the client's shared
semaphore is the bound) and collects EVERY failure per entity instead of stopping at the first, so
one call tells the caller everything that is wrong (docs/surgical-sync.md, invariant 1). It
never touches the database.

The dry-run half is the opposite: it reads only the local store and never calls GitLab (invariant 4).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import apsw

from lore_daemon import protocol
from lore_daemon.errors import LoreError
from lore_daemon.gitlab.client import GitLabClient
from lore_daemon.gitlab.models import Fetched, Issue, MergeRequest, Project
from lore_daemon.gitlab.targets import ResolvedTargets
from lore_daemon.store.entities import local_entity_state
from lore_daemon.sync.context import RunContext
from lore_daemon.timeutil import iso_to_ms, ms_to_datetime

Target = tuple[protocol.EntityKind, int]
OnFetched = Callable[[Target, "protocol.EntityFailure | None"], None]


def targets_of(targets: ResolvedTargets) -> list[Target]:
    """Issues first, then MRs, each in the order the caller named them."""
    return [("issue", iid) for iid in targets.issues] + [("mr", iid) for iid in targets.mrs]


def fetch_reporter(ctx: RunContext) -> OnFetched:
    """A progress ``report`` per fetched primary: ``#12 found`` / ``!34 failed``."""

    def report(target: Target, failure: protocol.EntityFailure | None) -> None:
        kind, iid = target
        outcome = "failed" if failure is not None else "found"
        ctx.emit(
            "report", f"{'#' if kind == 'issue' else '!'}{iid} {outcome}",
            entity=protocol.ProgressEntity(kind=kind, iid=iid, outcome=outcome, stage="fetch"),
        )

    return report


def entity_failure(kind: protocol.EntityKind, iid: int, stage: protocol.FailureStage, exc: LoreError,
                   *, context: str = "") -> protocol.EntityFailure:
    """One failure as the wire reports it; ``context`` prefixes the message (e.g. the project)."""
    return protocol.EntityFailure(
        kind=kind,
        iid=iid,
        stage=stage,
        code=exc.code,
        message=f"{context}{exc.message}",
        http_status=exc.http_status,
        retryable=exc.retryable,
    )


@dataclass
class PrimaryFetch:
    """What preflight fetched. ``retry_after_ms`` is the longest rate-limit wait GitLab asked for."""

    issues: dict[int, Fetched[Issue]] = field(default_factory=dict)
    mrs: dict[int, Fetched[MergeRequest]] = field(default_factory=dict)
    failures: list[protocol.EntityFailure] = field(default_factory=list)
    retry_after_ms: int | None = None

    def note_error(self, exc: LoreError) -> None:
        if exc.retry_after_ms is not None:
            self.retry_after_ms = max(self.retry_after_ms or 0, exc.retry_after_ms)


async def fetch_primaries(
    client: GitLabClient,
    project_id: int,
    targets: ResolvedTargets,
    on_fetched: OnFetched | None = None,
    *,
    on_started: Callable[[], None] | None = None,
) -> PrimaryFetch:
    """Fetch every target concurrently; failures are collected per entity, never raised.

    ``on_started`` is called once every fetch task exists: work it schedules (the surgical run's
    dependent fetches) queues for the client's shared semaphore BEHIND the primaries, so preflight
    is not slowed down by it. Only typed ``LoreError``s become entity failures: anything else is a
    bug and propagates. Failures come back in target order, whatever order responses arrived in.
    """
    result = PrimaryFetch()
    by_target: dict[Target, protocol.EntityFailure] = {}

    async def one(target: Target) -> None:
        kind, iid = target
        failure: protocol.EntityFailure | None = None
        try:
            if kind == "issue":
                result.issues[iid] = await client.get_issue(project_id, iid)
            else:
                result.mrs[iid] = await client.get_merge_request(project_id, iid)
        except LoreError as exc:
            failure = entity_failure(kind, iid, "fetch", exc)
            by_target[target] = failure
            result.note_error(exc)
        if on_fetched is not None:
            on_fetched(target, failure)

    order = targets_of(targets)
    gathered = asyncio.gather(*(one(t) for t in order))  # creates and schedules every task now
    if on_started is not None:
        try:
            on_started()
        except BaseException:
            gathered.cancel()
            raise
    await gathered
    result.failures = [by_target[t] for t in order if t in by_target]
    return result


def project_failures(targets: ResolvedTargets, exc: LoreError) -> list[protocol.EntityFailure]:
    """When the project itself cannot be resolved, no target can be checked: each fails with it."""
    context = f"project {targets.project}: "
    return [entity_failure(kind, iid, "fetch", exc, context=context) for kind, iid in targets_of(targets)]


def preflight_entities(targets: ResolvedTargets, fetched: PrimaryFetch) -> list[protocol.PreflightEntity]:
    """Every target with what GitLab said about it (title, updatedAt, webUrl when found)."""
    out: list[protocol.PreflightEntity] = []
    for kind, iid in targets_of(targets):
        item: Issue | MergeRequest | None
        got_issue = fetched.issues.get(iid) if kind == "issue" else None
        got_mr = fetched.mrs.get(iid) if kind == "mr" else None
        item = got_issue.item if got_issue is not None else (got_mr.item if got_mr is not None else None)
        if item is None:
            out.append(protocol.PreflightEntity(kind=kind, iid=iid, found=False))
            continue
        out.append(
            protocol.PreflightEntity(
                kind=kind,
                iid=iid,
                found=True,
                title=item.title,
                updated_at=ms_to_datetime(iso_to_ms(item.updated_at)),
                web_url=item.web_url,
            )
        )
    return out


async def resolve_project(client: GitLabClient, project: str) -> Project:
    """The project by path or numeric id (one request; moved paths follow GitLab's 301)."""
    return await client.get_project(int(project) if project.isdigit() else project)


# ------------------------------------------------------------------------------------ dry run


def _local_project_id(conn: apsw.Connection, project: str) -> int | None:
    """The project's GitLab id from the LOCAL projects table (a dry run may not ask GitLab)."""
    if project.isdigit():
        row = conn.execute("SELECT gitlab_id FROM projects WHERE gitlab_id = ?", (int(project),)).fetchone()
    else:
        row = conn.execute(
            "SELECT gitlab_id FROM projects WHERE path_with_namespace = ? COLLATE NOCASE", (project,)
        ).fetchone()
    return None if row is None else int(row[0])


def dry_run_entities(conn: apsw.Connection, targets: ResolvedTargets) -> list[protocol.EntityResult]:
    """Each target as ``wouldSync`` with its local state; unknown project → nothing exists locally.

    Runs on a read-only reader connection: it cannot write even by mistake.
    """
    project_id = _local_project_id(conn, targets.project)
    out: list[protocol.EntityResult] = []
    for kind, iid in targets_of(targets):
        state = None if project_id is None else local_entity_state(conn, project_id, kind, iid)
        if state is None:
            local = protocol.LocalState(exists=False)
            title = web_url = None
        else:
            local = protocol.LocalState(
                exists=True,
                updated_at=ms_to_datetime(state.updated_at_ms),
                last_seen_at=ms_to_datetime(state.last_seen_at_ms),
            )
            title, web_url = state.title, state.web_url
        out.append(
            protocol.EntityResult(
                kind=kind, iid=iid, outcome="wouldSync", title=title, web_url=web_url,
                updated_at=local.updated_at, local=local,
            )
        )
    return out
