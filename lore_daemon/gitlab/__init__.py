"""GitLab access: the async REST client, its retry policy, and offline surgical target parsing."""

from . import models
from ._retry import RetryPolicy, RetryWait
from .client import GitLabClient, RequestSent, request_observer, wait_observer
from .targets import ResolvedTargets, resolve_targets

__all__ = [
    "GitLabClient",
    "RequestSent",
    "ResolvedTargets",
    "RetryPolicy",
    "RetryWait",
    "models",
    "request_observer",
    "resolve_targets",
    "wait_observer",
]
