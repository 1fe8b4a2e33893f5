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
    version: str = "17.5.1"
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


@dataclass(slots=True)
class RuntimeOptions:
    """Knobs a test can flip on a running simulator (``SimControl.set_option``)."""

    total_threshold: int = 10_000
    omit_next_page_header: bool = False  # drop X-Next-Page and Link: clients must use the full-page rule
    token_mode: str = "valid"  # "valid" | "expired" (401 invalid_token) | "insufficient_scope" (403)
    issues_enabled: bool = True  # False: issue routes answer 403 (feature disabled)
    merge_requests_enabled: bool = True

    def set(self, name: str, value: object) -> None:
        """Set one option, checking its name and type (bool/int/str as declared)."""
        if name not in self.__slots__:
            raise _invalid(name, f"unknown option; known: {', '.join(self.__slots__)}")
        current = getattr(self, name)
        if type(value) is not type(current):
            raise _invalid(name, f"expects {type(current).__name__}")
        if name == "token_mode" and value not in ("valid", "expired", "insufficient_scope"):
            raise _invalid(name, "must be valid, expired or insufficient_scope")
        setattr(self, name, value)

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}
