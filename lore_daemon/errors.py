"""The error-code tree. Every failure a client can see is one of these, with a stable string code.

::

    LoreError                       (base; code INTERNAL)
    ├── ConfigError                 CONFIG_NOT_FOUND, CONFIG_INVALID, CONFIG_UNKNOWN_KEY, TOKEN_NOT_SET
    ├── TargetError                 INVALID_TARGET, MIXED_PROJECTS, TARGET_HOST_MISMATCH,
    │                               TOO_MANY_TARGETS, NO_TARGETS, PROJECT_REQUIRED
    ├── GitLabError                 (carries http_status and retryable)
    │   ├── GitLabAuthError         GITLAB_AUTH_FAILED        401
    │   ├── GitLabForbiddenError    GITLAB_FORBIDDEN          403
    │   ├── GitLabNotFoundError     GITLAB_NOT_FOUND          404
    │   ├── GitLabRateLimitedError  GITLAB_RATE_LIMITED       429 after the retry budget
    │   ├── GitLabUnavailableError  GITLAB_UNAVAILABLE        5xx, timeout, connection error
    │   ├── GitLabBadResponseError  GITLAB_BAD_RESPONSE       truncated or malformed body
    │   └── GitLabRequestError      GITLAB_REQUEST_FAILED     any other 4xx
    ├── StoreError                  DB_ERROR
    │   └── LockTimeoutError        LOCK_TIMEOUT
    ├── RunError                    PREFLIGHT_FAILED, ABANDONED, CANCELLED
    ├── NotInMirrorError            NOT_IN_MIRROR (a read found no local copy and may not sync)
    ├── EmbeddingError              EMBEDDING_UNAVAILABLE, EMBEDDING_MISCONFIGURED, EMBEDDING_FAILED
    ├── InvalidParamsError          INVALID_PARAMS
    └── ProtocolError               PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND

Each code has one ``CodeInfo`` in ``CODES``: what it means, whether retrying can help, the JSON-RPC
error code it maps to and the recovery-action kinds a client typically gets with it. The protocol
reference (``docs/protocol.md``) and ``lore/robotDocs`` are generated from / checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# JSON-RPC error codes used on the wire (LSP numbering).
RPC_PARSE_ERROR = -32700
RPC_INVALID_REQUEST = -32600
RPC_METHOD_NOT_FOUND = -32601
RPC_INVALID_PARAMS = -32602
RPC_INTERNAL_ERROR = -32603
RPC_REQUEST_CANCELLED = -32800
RPC_REQUEST_FAILED = -32803


@dataclass(frozen=True, slots=True)
class CodeInfo:
    meaning: str
    retryable: bool
    rpc_code: int
    exit_code: int  # the ``lore`` bridge's exit code for this error (a class of EXIT_CLASSES)
    actions: tuple[str, ...] = ()


# The ``lore`` bridge's exit codes, by class. Each error code's own exit code is in its
# ``CodeInfo``; the bridge, ``protocol.BRIDGE_EXIT_CODES`` and docs/protocol.md derive from them.
EXIT_SUCCESS = 0
EXIT_INTERNAL = 1
EXIT_PARTIAL = 8
EXIT_CANCELLED = 130
EXIT_CLASSES: dict[int, str] = {
    EXIT_SUCCESS: "success: the run succeeded or the read completed",
    EXIT_INTERNAL: "internal error or unexpected daemon failure",
    2: "usage error, invalid params or a message the daemon could not serve",
    3: "configuration or token problem",
    4: "GitLab refused the token",
    5: "a target was not found or preflight failed",
    6: "transient failure of GitLab or the embedding provider",
    7: "the sync lock could not be taken in time",
    EXIT_PARTIAL: "the run ended partial: primaries written, some dependents or embeddings failed",
    9: "the run failed for another reason",
    EXIT_CANCELLED: "cancelled, or interrupted (SIGINT)",
}


CODES: dict[str, CodeInfo] = {
    "CONFIG_NOT_FOUND": CodeInfo(
        "No configuration file at the looked-up path.", False, RPC_REQUEST_FAILED, 3, ("fixConfig",)
    ),
    "CONFIG_INVALID": CodeInfo(
        "The configuration file is not valid TOML or a key has the wrong type or value.",
        False, RPC_REQUEST_FAILED, 3, ("fixConfig",),
    ),
    "CONFIG_UNKNOWN_KEY": CodeInfo(
        "The configuration names a key this version does not know.",
        False, RPC_REQUEST_FAILED, 3, ("fixConfig",),
    ),
    "TOKEN_NOT_SET": CodeInfo(
        "The environment variable named by gitlab.token_env is unset or empty.",
        False, RPC_REQUEST_FAILED, 3, ("fixToken",),
    ),
    "INVALID_PARAMS": CodeInfo(
        "The request's params do not match the method's schema.", False, RPC_INVALID_PARAMS, 2, ()
    ),
    "INVALID_TARGET": CodeInfo(
        "A target is not a positive IID, a parsable reference or a URL of the right kind.",
        False, RPC_INVALID_PARAMS, 2, ("checkTarget",),
    ),
    "MIXED_PROJECTS": CodeInfo(
        "The targets name more than one project; one request syncs one project.",
        False, RPC_INVALID_PARAMS, 2, ("checkTarget",),
    ),
    "TARGET_HOST_MISMATCH": CodeInfo(
        "A target URL's scheme, host, port or base path differs from the configured GitLab.",
        False, RPC_INVALID_PARAMS, 2, ("checkTarget",),
    ),
    "TOO_MANY_TARGETS": CodeInfo(
        "More than 100 distinct entities in one surgical request.",
        False, RPC_INVALID_PARAMS, 2, ("checkTarget",),
    ),
    "NO_TARGETS": CodeInfo(
        "A surgical request named no entity.", False, RPC_INVALID_PARAMS, 2, ("checkTarget",)
    ),
    "PROJECT_REQUIRED": CodeInfo(
        "Bare IIDs or short references were given without a project and none could be inferred.",
        False, RPC_INVALID_PARAMS, 2, ("checkTarget",),
    ),
    "GITLAB_AUTH_FAILED": CodeInfo(
        "GitLab rejected the token (401).", False, RPC_REQUEST_FAILED, 4, ("fixToken",)
    ),
    "GITLAB_FORBIDDEN": CodeInfo(
        "The token may not read this resource (403).",
        False, RPC_REQUEST_FAILED, 4, ("fixToken", "checkTarget"),
    ),
    "GITLAB_NOT_FOUND": CodeInfo(
        "The project or entity does not exist or is not visible to the token (404).",
        False, RPC_REQUEST_FAILED, 5, ("checkTarget",),
    ),
    "GITLAB_RATE_LIMITED": CodeInfo(
        "GitLab kept answering 429 beyond the retry budget.", True, RPC_REQUEST_FAILED, 6, ("waitAndRetry",)
    ),
    "GITLAB_UNAVAILABLE": CodeInfo(
        "GitLab kept failing with 5xx, timeouts or connection errors beyond the retry budget.",
        True, RPC_REQUEST_FAILED, 6, ("waitAndRetry", "retryRun"),
    ),
    "GITLAB_BAD_RESPONSE": CodeInfo(
        "GitLab answered with a body that could not be decoded.", True, RPC_REQUEST_FAILED, 6, ("retryRun",)
    ),
    "GITLAB_REQUEST_FAILED": CodeInfo(
        "GitLab refused the request with a 4xx status other than 401/403/404/429.",
        False, RPC_REQUEST_FAILED, 9, ("checkTarget",),
    ),
    "PREFLIGHT_FAILED": CodeInfo(
        "At least one primary entity could not be fetched; nothing was written.",
        False, RPC_REQUEST_FAILED, 5, ("retryFailedEntities", "checkTarget"),
    ),
    "LOCK_TIMEOUT": CodeInfo(
        "Another run held the sync lock for longer than sync.lock_timeout_ms.",
        True, RPC_REQUEST_FAILED, 7, ("waitAndRetry",),
    ),
    "DB_ERROR": CodeInfo(
        "The local database failed.", True, RPC_REQUEST_FAILED, 9, ("retryRun",)
    ),
    "ABANDONED": CodeInfo(
        "The run's process died; its heartbeat went stale and the run was closed by a later start.",
        True, RPC_REQUEST_FAILED, 9, ("retryRun",),
    ),
    "CANCELLED": CodeInfo(
        "The run was cancelled by the client, a disconnect or SIGTERM.",
        True, RPC_REQUEST_CANCELLED, 130, ("retryRun",),
    ),
    "INTERNAL": CodeInfo(
        "An unexpected internal error.", False, RPC_INTERNAL_ERROR, 1, ()
    ),
    "NOT_IN_MIRROR": CodeInfo(
        "The issue or merge request is not in the local mirror, and the read was offline or had "
        "no maxAgeMs to sync it with.",
        False, RPC_REQUEST_FAILED, 5, ("syncTarget",),
    ),
    "EMBEDDING_UNAVAILABLE": CodeInfo(
        "The embedding provider could not be reached or kept failing (server down, timeouts, 5xx); "
        "documents keep their old vectors and search falls back to lexical.",
        True, RPC_REQUEST_FAILED, 6, ("retryRun",),
    ),
    "EMBEDDING_MISCONFIGURED": CodeInfo(
        "The embedding provider cannot work as configured: local weights missing or corrupt, unknown "
        "model, API key unset or refused, or vectors of unexpected dimensions.",
        False, RPC_REQUEST_FAILED, 3, ("fixConfig",),
    ),
    "EMBEDDING_FAILED": CodeInfo(
        "The embedding provider refused one document's text or answered it with something unusable.",
        False, RPC_REQUEST_FAILED, 9, ("retryRun",),
    ),
    # Protocol-level failures: the message itself could not be served (no method ran).
    "PARSE_ERROR": CodeInfo(
        "The message body was not valid JSON, or its framing (Content-Length) was broken.",
        False, RPC_PARSE_ERROR, 2, (),
    ),
    "INVALID_REQUEST": CodeInfo(
        "The message is not a valid JSON-RPC 2.0 request, or it arrived after shutdown.",
        False, RPC_INVALID_REQUEST, 2, (),
    ),
    "METHOD_NOT_FOUND": CodeInfo(
        "The daemon has no method of that name; lore/robotDocs lists them.",
        False, RPC_METHOD_NOT_FOUND, 2, (),
    ),
    "DAEMON_UNAVAILABLE": CodeInfo(
        "The shared daemon's socket could not be served or reached (path owned by another user, another "
        "daemon already there, or it did not start in time); the message names the socket.",
        True, RPC_REQUEST_FAILED, 1, (),
    ),
}


@dataclass(eq=False)
class LoreError(Exception):
    """Base of every expected failure. ``details`` holds structured context (file, key, iid...)."""

    message: str
    code: str = "INTERNAL"
    suggestion: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    http_status: int | None = None
    retry_after_ms: int | None = None

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"undocumented error code {self.code!r}")
        Exception.__init__(self, self.message)

    @property
    def retryable(self) -> bool:
        return CODES[self.code].retryable

    @property
    def rpc_code(self) -> int:
        return CODES[self.code].rpc_code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ConfigError(LoreError):
    """Configuration could not be loaded. ``details`` names ``file`` and, when known, ``key``."""


class TargetError(LoreError):
    """A surgical target was rejected before any network call."""


class GitLabError(LoreError):
    """A GitLab request failed for good (after the retry policy gave up, or at once for 4xx)."""


class GitLabAuthError(GitLabError):
    pass


class GitLabForbiddenError(GitLabError):
    pass


class GitLabNotFoundError(GitLabError):
    pass


class GitLabRateLimitedError(GitLabError):
    pass


class GitLabUnavailableError(GitLabError):
    pass


class GitLabBadResponseError(GitLabError):
    pass


class GitLabRequestError(GitLabError):
    pass


class StoreError(LoreError):
    pass


class LockTimeoutError(StoreError):
    pass


class RunError(LoreError):
    pass


class NotInMirrorError(LoreError):
    """A read (``lore/get``) found no local copy and was not allowed to sync one."""


class InvalidParamsError(LoreError):
    pass


class EmbeddingError(LoreError):
    """The embedding provider failed; ``details`` names the provider and model, never a key."""


class ProtocolError(LoreError):
    """A message the daemon could not serve at the JSON-RPC level (bad JSON, framing, method)."""


class DaemonError(LoreError):
    """The shared daemon could not take its socket, or a client could not start or reach it."""


def gitlab_error_for_status(status: int, message: str, *, retry_after_ms: int | None = None) -> GitLabError:
    """Map a final HTTP status to the matching typed error."""
    if status == 401:
        return GitLabAuthError(
            message,
            "GITLAB_AUTH_FAILED",
            "Check that the token is valid and not expired.",
            http_status=status,
        )
    if status == 403:
        return GitLabForbiddenError(
            message,
            "GITLAB_FORBIDDEN",
            "Give the token read_api scope and access to the project.",
            http_status=status,
        )
    if status == 404:
        return GitLabNotFoundError(
            message,
            "GITLAB_NOT_FOUND",
            "Check the project path and IID, and that the token can see them.",
            http_status=status,
        )
    if status == 429:
        return GitLabRateLimitedError(
            message,
            "GITLAB_RATE_LIMITED",
            "Wait for the rate limit to reset, then retry.",
            http_status=status,
            retry_after_ms=retry_after_ms,
        )
    if status >= 500:
        return GitLabUnavailableError(
            message, "GITLAB_UNAVAILABLE", "GitLab is failing; retry later.", http_status=status
        )
    return GitLabRequestError(message, "GITLAB_REQUEST_FAILED", "Check the request.", http_status=status)
