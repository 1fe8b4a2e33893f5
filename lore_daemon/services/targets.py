"""Checks and error codes shared by the GitLab-facing methods (answered before a run starts)."""

from __future__ import annotations

from lore_daemon import protocol
from lore_daemon.errors import TargetError

CONFIG_ERRORS = ("CONFIG_NOT_FOUND", "CONFIG_INVALID", "CONFIG_UNKNOWN_KEY", "TOKEN_NOT_SET")
GITLAB_ERRORS = (
    "GITLAB_AUTH_FAILED", "GITLAB_FORBIDDEN", "GITLAB_NOT_FOUND", "GITLAB_RATE_LIMITED",
    "GITLAB_UNAVAILABLE", "GITLAB_BAD_RESPONSE", "GITLAB_REQUEST_FAILED",
)
TARGET_ERRORS = (
    *CONFIG_ERRORS,
    "INVALID_TARGET", "MIXED_PROJECTS", "TARGET_HOST_MISMATCH", "TOO_MANY_TARGETS", "NO_TARGETS",
    "PROJECT_REQUIRED",
    *GITLAB_ERRORS,
    "DB_ERROR",
)
STANDARD_ERRORS = (*CONFIG_ERRORS, *GITLAB_ERRORS, "LOCK_TIMEOUT", "DB_ERROR")
# Methods that only read the local store: they need the configuration, never the token.
LOCAL_READ_ERRORS = ("CONFIG_NOT_FOUND", "CONFIG_INVALID", "CONFIG_UNKNOWN_KEY", "DB_ERROR")


def require_targets(params: protocol.TargetParams) -> None:
    """Reject a surgical request that names nothing before touching config, token or network.

    The engine would reject it too, but only after building itself; answering first means a
    params mistake is reported as one (-32602) even when the token or config is also missing.
    """
    if not (params.issues or params.mrs or params.issue_urls or params.mr_urls or params.refs):
        raise TargetError(
            "The request names no issue or merge request.",
            "NO_TARGETS",
            "Pass at least one of issues, mrs, issueUrls, mrUrls or refs.",
            details={"fields": ["issues", "mrs", "issueUrls", "mrUrls", "refs"]},
        )
