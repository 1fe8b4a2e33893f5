"""``lore/robotDocs``: the machine-readable manifest, built from the code so it cannot drift.

Methods and their schemas come from the registered ``MethodSpec``s, error codes from
``errors.CODES``, action kinds from ``protocol.ActionKind``, exit codes from
``protocol.BRIDGE_EXIT_CODES``. Built once per process (it never changes while running).
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Sequence

from lore_daemon import __version__, protocol
from lore_daemon.errors import CODES
from lore_daemon.rpc.lsp import PROGRESS_NOTIFICATION
from lore_daemon.schemagen import json_schema
from lore_daemon.services.runtime import Runtime
from lore_daemon.services.spec import Call, MethodSpec

ACTION_MEANINGS: dict[str, str] = {
    "retryRun": "Send the run's (or request's) original call again, same targets and options.",
    "retryFailedEntities": "Surgically re-sync only the entities that failed; the rest are done.",
    "retryEmbedding": "Run a standard sync: its embed phase embeds every document without a current vector.",
    "waitAndRetry": "Wait afterMs milliseconds (rate limit, lock or outage), then send the request again.",
    "fixToken": "Export a valid GitLab token in the environment variable named by gitlab.token_env.",
    "fixConfig": "Edit the named configuration file (and key), then retry.",
    "checkTarget": "Preflight the target (zero writes) to see whether it exists and the token can read it.",
    "inspectRun": "Read the run's ledger row with lore/syncRuns runId=... for its phase and failures.",
    "syncTarget": "Read the entity again with maxAgeMs 0: a surgical sync brings it into the mirror first.",
}

ALWAYS_POSSIBLE = ("INVALID_PARAMS", "CANCELLED", "INTERNAL")
TRANSPORT = "JSON-RPC 2.0 over stdio with LSP base-protocol framing (Content-Length headers)"


def _method_doc(spec: MethodSpec) -> protocol.MethodDoc:
    return protocol.MethodDoc(
        name=spec.name,
        summary=spec.summary,
        params_schema=json_schema(spec.params_type),
        result_schema=json_schema(spec.result_type),
        reports_progress=spec.reports_progress,
        error_codes=list(dict.fromkeys((*spec.error_codes, *ALWAYS_POSSIBLE))),
    )


@functools.cache
def _manifest(methods: tuple[MethodSpec, ...]) -> protocol.RobotDocsResult:
    return protocol.RobotDocsResult(
        name="lore-daemon",
        version=__version__,
        transport=TRANSPORT,
        methods=[_method_doc(spec) for spec in sorted(methods, key=lambda s: s.name)],
        notifications=[
            protocol.NotificationDoc(
                name=PROGRESS_NOTIFICATION,
                summary=(
                    "Progress of a run: begin/end per phase and reports in between. Mirrored as "
                    "$/progress begin/report/end when the request had a workDoneToken or the client "
                    "supports window.workDoneProgress."
                ),
                schema=json_schema(protocol.ProgressNotification),
            )
        ],
        error_codes=[
            protocol.ErrorCodeDoc(
                code=code, meaning=info.meaning, retryable=info.retryable,
                rpc_code=info.rpc_code, actions=list(info.actions),
            )
            for code, info in CODES.items()
        ],
        recovery_action_kinds=[
            protocol.ActionKindDoc(kind=kind, meaning=ACTION_MEANINGS[kind])
            for kind in typing.get_args(protocol.ActionKind)
        ],
        bridge_exit_codes=[
            protocol.ExitCodeDoc(exit_code=code, meaning=meaning)
            for code, meaning in sorted(protocol.BRIDGE_EXIT_CODES.items())
        ],
        schemas={
            "RobotError": json_schema(protocol.RobotError),
            "RecoveryAction": json_schema(protocol.RecoveryAction),
        },
    )


def manifest(methods: Sequence[MethodSpec]) -> protocol.RobotDocsResult:
    return _manifest(tuple(methods))


async def serve(
    runtime: Runtime, params: protocol.RobotDocsParams, call: Call
) -> protocol.RobotDocsResult:
    return manifest(runtime.methods)


SPEC = MethodSpec(
    name="lore/robotDocs",
    summary=(
        "This manifest: every method with its params and result JSON Schemas, the lore/progress "
        "notification, every error code, recovery action kinds and the bridge's exit codes."
    ),
    params_type=protocol.RobotDocsParams,
    result_type=protocol.RobotDocsResult,
    serve=serve,
)
