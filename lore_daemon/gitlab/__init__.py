"""GitLab access: the async REST client, its retry policy, and offline surgical target parsing.

The client (and with it httpx) is imported lazily, on first use of one of its names: the daemon
imports ``lore_daemon.gitlab.models`` at start-up and should not pay for httpx until it talks
to GitLab.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import models
from ._lanes import Lane, lane, request_lane
from ._retry import RetryPolicy, RetryWait
from .targets import ResolvedTargets, resolve_targets

if TYPE_CHECKING:
    from .client import GitLabClient, RequestSent, request_observer, wait_observer

_CLIENT_NAMES = frozenset({"GitLabClient", "RequestSent", "request_observer", "wait_observer"})

__all__ = [
    "GitLabClient",
    "Lane",
    "RequestSent",
    "ResolvedTargets",
    "RetryPolicy",
    "RetryWait",
    "lane",
    "models",
    "request_lane",
    "request_observer",
    "resolve_targets",
    "wait_observer",
]


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
