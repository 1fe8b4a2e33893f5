"""What a method is: its name, its param and result types, and the coroutine that serves it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from lore_daemon.services.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Call:
    """One request being served: enough to rebuild it as a recovery action."""

    method: str
    params: msgspec.Struct | None = None


Service = Callable[["Runtime", Any, Call], Awaitable[msgspec.Struct]]


@dataclass(frozen=True, slots=True)
class MethodSpec:
    name: str
    summary: str
    params_type: type[msgspec.Struct]
    result_type: type[msgspec.Struct]
    serve: Service
    reports_progress: bool = False
    # Error codes this method answers with beyond INVALID_PARAMS / INTERNAL / CANCELLED.
    error_codes: tuple[str, ...] = ()
