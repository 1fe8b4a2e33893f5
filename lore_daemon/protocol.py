"""Wire types: every param, result, notification, error and recovery action (msgspec Structs).

Field names are camelCase on the wire (``rename="camel"``). Params forbid unknown fields, so a typo
is an ``INVALID_PARAMS`` error rather than a silently ignored option. Results always carry every
field so their JSON Schemas (``schema/robot/``) are stable. This module imports nothing heavy
(``errors`` only): the Python client and the schema generator import it without pulling in pygls,
apsw or httpx.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from lore_daemon.errors import CODES, EXIT_CLASSES

Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
Iid = Annotated[int, msgspec.Meta(ge=1)]

EntityKind = Literal["issue", "mr"]
RunMode = Literal["standard", "surgical"]
RunPhase = Literal["preflight", "ingest", "dependents", "docs", "embed", "done", "failed"]
RunStatus = Literal["running", "succeeded", "partial", "failed", "cancelled"]
FailureStage = Literal[
    "fetch", "ingest", "discussions", "events", "closesIssues", "diffs", "docs", "embed"
]
EntityOutcome = Literal["ingested", "unchanged", "skippedStale", "failed", "wouldSync"]
DependentOutcome = Literal["synced", "unchanged", "failed", "skipped"]
ProgressEvent = Literal["begin", "report", "end"]
ActionKind = Literal[
    "retryRun", "retryFailedEntities", "retryEmbedding", "waitAndRetry", "fixToken", "fixConfig",
    "checkTarget", "inspectRun", "syncTarget",
]

MAX_SURGICAL_ENTITIES = 100

# Phases in the order a surgical run moves through them (``failed`` is terminal, off the line).
SURGICAL_PHASES: tuple[str, ...] = ("preflight", "ingest", "dependents", "docs", "embed")
STANDARD_PHASES: tuple[str, ...] = ("ingest", "dependents", "docs", "embed")


class _Params(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """Base of request params. ``workDoneToken`` is the LSP work-done progress token, if any."""

    work_done_token: str | int | None = None


class _Wire(msgspec.Struct, rename="camel", kw_only=True):
    """Base of everything the daemon sends."""


# --------------------------------------------------------------------------------------------- params


class TargetParams(_Params, kw_only=True):
    """Targets of a surgical request. ``project`` is optional when URLs or qualified refs fix it."""

    project: str | None = None
    issues: list[int] = []
    mrs: list[int] = []
    issue_urls: list[str] = []
    mr_urls: list[str] = []
    refs: list[str] = []


class PreflightParams(TargetParams, kw_only=True):
    pass


class SyncSurgicalParams(TargetParams, kw_only=True):
    dry_run: bool = False
    no_embed: bool = False


class SyncParams(_Params, kw_only=True):
    """Standard incremental sync. ``projects`` defaults to every configured project; ``reembed``
    embeds every document again, reusing no stored vector (a model change needs no flag)."""

    projects: list[str] | None = None
    no_embed: bool = False
    reembed: bool = False


class SyncRunsParams(_Params, kw_only=True):
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 20
    run_id: str | None = None
    status: RunStatus | None = None


class StatusParams(_Params, kw_only=True):
    pass


class RobotDocsParams(_Params, kw_only=True):
    pass


# ------------------------------------------------------------------------------------ shared pieces


class RpcRequest(_Wire, kw_only=True):
    """The exact JSON-RPC call a client sends to carry out a recovery action."""

    method: str
    params: dict[str, Any]


class RecoveryAction(_Wire, kw_only=True):
    kind: ActionKind
    title: str
    request: RpcRequest | None = None
    command: str | None = None
    after_ms: int | None = None


class RobotError(_Wire, kw_only=True):
    """``data`` of every JSON-RPC error, and ``error`` of failed runs."""

    code: str
    message: str
    suggestion: str
    retryable: bool
    actions: list[RecoveryAction] = []
    details: dict[str, Any] = {}


class EntityFailure(_Wire, kw_only=True):
    kind: EntityKind
    iid: int
    stage: FailureStage
    code: str
    message: str
    http_status: int | None = None
    retryable: bool = False


class RequestedTargets(_Wire, kw_only=True):
    """What the caller asked for, as given, plus the resolved IID lists."""

    issues: list[int] = []
    mrs: list[int] = []
    issue_urls: list[str] = []
    mr_urls: list[str] = []
    refs: list[str] = []
    projects: list[str] = []


class Counters(_Wire, kw_only=True):
    """Run counters. Retry waits are counted here as well as reported in progress notifications."""

    requests: int = 0
    retries: int = 0
    rate_limit_waits: int = 0
    wait_ms: int = 0
    issues_fetched: int = 0
    mrs_fetched: int = 0
    issues_ingested: int = 0
    mrs_ingested: int = 0
    unchanged: int = 0
    skipped_stale: int = 0
    discussions: int = 0
    notes: int = 0
    events: int = 0
    closes_links: int = 0
    closes_external: int = 0  # closes_issues items of an external tracker: counted, not stored
    file_changes: int = 0
    dependent_jobs_done: int = 0
    dependent_jobs_failed: int = 0
    dependents_unsettled: int = 0  # stages written from a fetch inside the settle window
    documents_regenerated: int = 0
    documents_unchanged: int = 0
    embed_total: int = 0  # documents the embed phase set out to embed (its done/total is embedded/embedTotal)
    embedded: int = 0
    failures: int = 0


class LocalState(_Wire, kw_only=True):
    """What the local store knows of a target (dry run)."""

    exists: bool
    updated_at: Timestamp | None = None
    last_seen_at: Timestamp | None = None


class EntityResult(_Wire, kw_only=True):
    kind: EntityKind
    iid: int
    outcome: EntityOutcome
    title: str | None = None
    web_url: str | None = None
    updated_at: Timestamp | None = None
    dependents: dict[str, DependentOutcome] = {}
    document_ids: list[int] = []
    local: LocalState | None = None


# ------------------------------------------------------------------------------------------ results


class SyncResult(_Wire, kw_only=True):
    run_id: str | None
    mode: RunMode
    status: RunStatus
    phase: RunPhase
    failed_phase: RunPhase | None = None
    dry_run: bool = False
    project: str | None = None
    requested: RequestedTargets = msgspec.field(default_factory=RequestedTargets)
    entities: list[EntityResult] = []
    entity_failures: list[EntityFailure] = []
    counters: Counters = msgspec.field(default_factory=Counters)
    stage_timings_ms: dict[str, int] = {}
    recovery_actions: list[RecoveryAction] = []
    warnings: list[str] = []
    error: RobotError | None = None


class AuthInfo(_Wire, kw_only=True):
    ok: bool
    username: str | None = None


class PreflightEntity(_Wire, kw_only=True):
    kind: EntityKind
    iid: int
    found: bool
    title: str | None = None
    updated_at: Timestamp | None = None
    web_url: str | None = None


class PreflightResult(_Wire, kw_only=True):
    ok: bool
    project: str | None
    auth: AuthInfo
    entities: list[PreflightEntity] = []
    failures: list[EntityFailure] = []
    stage_timings_ms: dict[str, int] = {}
    recovery_actions: list[RecoveryAction] = []


class SyncRun(_Wire, kw_only=True):
    run_id: str
    mode: RunMode
    phase: RunPhase
    status: RunStatus
    started_at: Timestamp
    failed_phase: RunPhase | None = None
    heartbeat_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    cancelled_at: Timestamp | None = None
    project: str | None = None
    requested: RequestedTargets = msgspec.field(default_factory=RequestedTargets)
    counters: Counters = msgspec.field(default_factory=Counters)
    stage_timings_ms: dict[str, int] = {}
    failures: list[EntityFailure] = []
    error: RobotError | None = None
    surgical_summary: dict[str, Any] | None = None
    owner: str | None = None
    suggested_retry: RecoveryAction | None = None
    suggested_retry_command: str | None = None


class SyncRunsResult(_Wire, kw_only=True):
    runs: list[SyncRun]


class LockHolder(_Wire, kw_only=True):
    name: str
    owner: str
    run_id: str | None
    pid: int
    acquired_at: Timestamp
    heartbeat_at: Timestamp


class EmbeddingStatus(_Wire, kw_only=True):
    """``lore/status``: the embedding provider, its health, the documents with current vectors."""

    provider: Literal["local", "ollama", "openai", "none"]
    model: str | None
    model_key: str | None  # what vectors are recorded with
    dimensions: int | None
    state: Literal["disabled", "notLoaded", "ready", "unavailable"]
    documents: int
    current_documents: int
    pending_documents: int  # without a current vector: the next standard sync embeds them
    parked_documents: int  # refused by the provider repeatedly for their present content
    vectors: int  # chunk vectors stored for this model
    error: RobotError | None = None  # the provider's last failure (state unavailable)
    checked_at: Timestamp | None = None  # when the provider last answered or failed


class StatusResult(_Wire, kw_only=True):
    version: str
    uptime_ms: int
    schema_version: int
    db_path: str
    db_size_bytes: int
    locks: list[LockHolder]
    queue_depths: dict[str, int]
    last_runs: list[SyncRun]
    config: dict[str, Any]
    pid: int | None = None  # the daemon's process id: one shared daemon answers many `lore` calls
    socket_path: str | None = None  # the shared daemon's Unix socket; null over stdio
    embedding: EmbeddingStatus | None = None


# ------------------------------------------------------------------------------------ notifications


class ProgressEntity(_Wire, kw_only=True):
    kind: EntityKind
    iid: int
    outcome: str | None = None
    stage: str | None = None


class ProgressNotification(_Wire, kw_only=True):
    """``lore/progress``: one per phase begin/end, and reports in between (per entity, waits).

    ``workDoneToken`` echoes the request's token (client-sent or server-created) so a client with
    several requests in flight can route each notification to the request that caused it.
    """

    run_id: str | None
    phase: RunPhase
    event: ProgressEvent
    message: str = ""
    elapsed_ms: int = 0
    counters: Counters = msgspec.field(default_factory=Counters)
    entity: ProgressEntity | None = None
    work_done_token: str | int | None = None


# -------------------------------------------------------------------------------------- robot docs


class MethodDoc(_Wire, kw_only=True):
    """One JSON-RPC method: what it does and the JSON Schemas of its params and result."""

    name: str
    summary: str
    params_schema: dict[str, Any]
    result_schema: dict[str, Any]
    reports_progress: bool = False
    error_codes: list[str] = []


class NotificationDoc(_Wire, kw_only=True):
    name: str
    summary: str
    schema: dict[str, Any]


class ErrorCodeDoc(_Wire, kw_only=True):
    code: str
    meaning: str
    retryable: bool
    rpc_code: int
    actions: list[str] = []


class ActionKindDoc(_Wire, kw_only=True):
    kind: str
    meaning: str


class ExitCodeDoc(_Wire, kw_only=True):
    exit_code: int
    meaning: str


class RobotDocsResult(_Wire, kw_only=True):
    """``lore/robotDocs``: everything an agent needs to drive the daemon without reading prose."""

    name: str
    version: str
    transport: str
    methods: list[MethodDoc]
    notifications: list[NotificationDoc]
    error_codes: list[ErrorCodeDoc]
    recovery_action_kinds: list[ActionKindDoc]
    bridge_exit_codes: list[ExitCodeDoc]
    schemas: dict[str, Any] = {}


def _bridge_exit_codes() -> dict[int, str]:
    """Each exit class's meaning and the error codes in it, from ``errors.CODES``."""
    table = {}
    for exit_code, meaning in EXIT_CLASSES.items():
        codes = ", ".join(code for code, info in CODES.items() if info.exit_code == exit_code)
        table[exit_code] = f"{meaning} ({codes})" if codes else meaning
    return table


# Bridge (``lore``) exit codes, derived from ``errors.CODES`` (each code's exit code lives beside
# its meaning there). Listed by lore/robotDocs; docs/protocol.md shows the same table (a test).
BRIDGE_EXIT_CODES: dict[int, str] = _bridge_exit_codes()
