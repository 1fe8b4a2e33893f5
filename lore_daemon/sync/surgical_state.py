"""Per-target bookkeeping of a surgical run: what happened to each entity the caller named.

Kept apart from the phases so the result, the ledger summary and the progress reports all read
the same facts. A target's outcome starts as ``failed`` (= not written by this run) and becomes
``ingested``, ``unchanged`` or ``skippedStale`` when the ingest transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lore_daemon import protocol
from lore_daemon.errors import LoreError
from lore_daemon.gitlab.targets import ResolvedTargets
from lore_daemon.store.entities import IngestOutcome
from lore_daemon.store.keys import SourceKey
from lore_daemon.sync.preflight import PrimaryFetch, Target, entity_failure, targets_of
from lore_daemon.timeutil import iso_to_ms, ms_to_datetime

_OUTCOME: dict[str, protocol.EntityOutcome] = {
    "ingested": "ingested",
    "unchanged": "unchanged",
    "skipped_stale": "skippedStale",
}


@dataclass
class EntityState:
    kind: protocol.EntityKind
    iid: int
    outcome: protocol.EntityOutcome = "failed"
    title: str | None = None
    web_url: str | None = None
    updated_at_ms: int = 0
    gitlab_id: int | None = None
    touched: set[SourceKey] = field(default_factory=set)
    dependents: dict[str, protocol.DependentOutcome] = field(default_factory=dict)
    document_ids: list[int] = field(default_factory=list)

    @property
    def target(self) -> Target:
        return (self.kind, self.iid)

    def failure(self, stage: protocol.FailureStage, exc: LoreError) -> protocol.EntityFailure:
        return entity_failure(self.kind, self.iid, stage, exc)

    def result(self) -> protocol.EntityResult:
        return protocol.EntityResult(
            kind=self.kind,
            iid=self.iid,
            outcome=self.outcome,
            title=self.title,
            web_url=self.web_url,
            updated_at=ms_to_datetime(self.updated_at_ms) if self.updated_at_ms else None,
            dependents=dict(self.dependents),
            document_ids=list(self.document_ids),
        )


class EntityTable:
    """Every target of the run, in request order (issues, then MRs)."""

    def __init__(self, targets: ResolvedTargets) -> None:
        self.targets: list[Target] = targets_of(targets)
        self._project = targets.project
        self._issues = list(targets.issues)
        self._mrs = list(targets.mrs)
        self._entities = {t: EntityState(kind=t[0], iid=t[1]) for t in self.targets}
        self._order = {t: i for i, t in enumerate(self.targets)}

    def get(self, target: Target) -> EntityState:
        return self._entities[target]

    def order(self, target: Target) -> int:
        return self._order[target]

    def requested(self, params: protocol.SyncSurgicalParams) -> protocol.RequestedTargets:
        """Resolved IIDs plus the URLs and references exactly as the caller gave them."""
        return protocol.RequestedTargets(
            issues=list(self._issues),
            mrs=list(self._mrs),
            issue_urls=list(params.issue_urls),
            mr_urls=list(params.mr_urls),
            refs=list(params.refs),
            projects=[self._project],
        )

    def record_fetched(self, fetched: PrimaryFetch) -> None:
        for iid, issue in fetched.issues.items():
            self._describe(self._entities[("issue", iid)], issue.item.title, issue.item.web_url,
                           issue.item.updated_at)
        for iid, mr in fetched.mrs.items():
            self._describe(self._entities[("mr", iid)], mr.item.title, mr.item.web_url, mr.item.updated_at)

    @staticmethod
    def _describe(entity: EntityState, title: str, web_url: str, updated_at: str) -> None:
        entity.title, entity.web_url, entity.updated_at_ms = title, web_url, iso_to_ms(updated_at)

    def record_ingest(self, outcome: IngestOutcome, counters: protocol.Counters) -> EntityState:
        entity = self._entities[(outcome.kind, outcome.iid)]
        entity.outcome = _OUTCOME[outcome.status]
        entity.gitlab_id = outcome.gitlab_id
        entity.updated_at_ms = outcome.updated_at_ms
        entity.touched |= outcome.touched
        if entity.outcome == "ingested":
            if entity.kind == "issue":
                counters.issues_ingested += 1
            else:
                counters.mrs_ingested += 1
        elif entity.outcome == "unchanged":
            counters.unchanged += 1
        else:
            counters.skipped_stale += 1
        return entity

    def wants_dependents(self, target: Target) -> bool:
        """Ingested AND unchanged targets get fresh dependents; stale-skipped ones get nothing."""
        return self._entities[target].outcome in ("ingested", "unchanged")

    def keys_by_target(self) -> dict[Target, list[SourceKey]]:
        """The exact keys each written target's ingest and dependents touched (docs scope)."""
        return {
            t: sorted(e.touched)
            for t, e in self._entities.items()
            if e.touched and self.wants_dependents(t)
        }

    def with_documents(self, document_ids: set[int]) -> list[EntityState]:
        return [e for e in self._entities.values() if document_ids.intersection(e.document_ids)]

    def results(self) -> list[protocol.EntityResult]:
        return [e.result() for e in self._entities.values()]

    def summary(self) -> list[dict[str, Any]]:
        """Per-entity outcomes for the ledger's surgical summary (camelCase like the wire)."""
        return [
            {
                "kind": e.kind,
                "iid": e.iid,
                "outcome": e.outcome,
                "dependents": dict(e.dependents),
                "documentIds": list(e.document_ids),
            }
            for e in self._entities.values()
        ]
