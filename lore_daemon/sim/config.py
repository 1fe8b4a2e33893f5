"""Simulator configuration: the seeded data set's size and the server's knobs."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from lore_daemon.errors import InvalidParamsError

_MAX_ENTITIES = 1_000_000  # global ids are laid out in 1,000,000-wide blocks (see data.py)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that shapes one simulator instance. Same config (and seed) → same data."""

    seed: int = 1
    issues: int = 200  # issues of the big project "group/project" (id 1)
    mrs: int = 50  # merge requests of "group/project"
    notes_per_entity: int = 8  # average notes per issue/MR (system notes included)
    token: str = "sim-token"
    host: str = "127.0.0.1"
    port: int = 0  # 0 = any free port
    total_threshold: int = 10_000  # X-Total/X-Total-Pages/rel="last" only when count <= this
    latency_ms: int = 0  # added to every API request
    other_issues: int = 10  # size of the small project "group/sub/other" (id 2)
    other_mrs: int = 5
    timeout_hold_s: float = 300.0  # how long a "timeout" fault holds a connection open
    log_limit: int = 50_000  # request-log entries kept (oldest dropped first; ~0.5 KB each)
    version: str = "18.4.1"
    corpus: bool = False  # also serve the curated project acme/brightday (id 3, sim/corpus)

    def __post_init__(self) -> None:
        for name in ("issues", "mrs", "other_issues", "other_mrs"):
            value = getattr(self, name)
            if not 0 <= value < _MAX_ENTITIES:
                raise _invalid(name, f"must be between 0 and {_MAX_ENTITIES - 1}")
        if not 0 <= self.notes_per_entity <= 50:
            raise _invalid("notes_per_entity", "must be between 0 and 50")
        if not self.token:
            raise _invalid("token", "must not be empty")
        if self.total_threshold < 0 or self.latency_ms < 0 or self.log_limit < 1:
            raise _invalid("total_threshold/latency_ms/log_limit", "must not be negative")
        if not _is_loopback(self.host):
            raise _invalid("host", "the simulator only binds loopback addresses")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _invalid(key: str, why: str) -> InvalidParamsError:
    return InvalidParamsError(
        f"invalid simulator setting {key}: {why}",
        "INVALID_PARAMS",
        "Fix the simulator option.",
        details={"key": key},
    )


RATE_LIMIT_HEADER_MODES = ("all", "throttled", "none")
_CHOICES: dict[str, tuple[str, ...]] = {
    "token_mode": ("valid", "expired", "insufficient_scope"),
    "rate_limit_headers": RATE_LIMIT_HEADER_MODES,
}


@dataclass(slots=True)
class RuntimeOptions:
    """Knobs a test can flip on a running simulator (``SimControl.set_option``).

    They model what differs between GitLab versions and settings; what GitLab always does
    (ThrottledTouch, the ``Date`` header) is not a knob.
    """

    total_threshold: int = 10_000
    omit_next_page_header: bool = False  # drop X-Next-Page and Link: clients must use the full-page rule
    token_mode: str = "valid"  # "valid" | "expired" (401 invalid_token) | "insufficient_scope" (403)
    keyset_issues: bool = True  # GitLab >= 18.3 pages project issues by cursor; False: 405 (older)
    rate_limit: int = 0  # authenticated API requests per period; 0 = not throttled (self-managed default)
    rate_limit_period_s: int = 60  # GitLab.com: 60; self-managed default when enabled: 3600
    rate_limit_headers: str = "all"  # "all" (RateLimit-* on every response) | "throttled" | "none"
    microsecond_timestamps: bool = False  # notes and events stamped with 6 fractional digits

    def set(self, name: str, value: object) -> None:
        """Set one option, checking its name and type (bool/int/str as declared)."""
        if name not in self.__slots__:
            raise _invalid(name, f"unknown option; known: {', '.join(self.__slots__)}")
        current = getattr(self, name)
        if type(value) is not type(current):
            raise _invalid(name, f"expects {type(current).__name__}")
        choices = _CHOICES.get(name)
        if choices is not None and value not in choices:
            raise _invalid(name, f"must be one of {', '.join(choices)}")
        if isinstance(value, int) and not isinstance(value, bool):
            low = 1 if name == "rate_limit_period_s" else 0
            if value < low:
                raise _invalid(name, f"must be at least {low}")
        setattr(self, name, value)

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class ProjectSettings:
    """Per-project settings (``SimControl.set_project_option``)."""

    issues_enabled: bool = True  # False: issue routes answer 403 (feature disabled), MRs still work
    merge_requests_enabled: bool = True
    external_tracker: bool = False  # MRs also close external issues: closes_issues gets {id: "PROJ-1"}

    def set(self, name: str, value: object) -> None:
        if name not in self.__slots__:
            raise _invalid(name, f"unknown project option; known: {', '.join(self.__slots__)}")
        if not isinstance(value, bool):
            raise _invalid(name, "expects bool")
        setattr(self, name, value)

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}
