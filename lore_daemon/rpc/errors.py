"""Build JSON-RPC errors whose ``data`` is always a ``RobotError`` (never a traceback)."""

from __future__ import annotations

import msgspec
from pygls.exceptions import JsonRpcException

from lore_daemon.errors import CODES
from lore_daemon.protocol import RecoveryAction, RobotError


def robot_error(
    code: str,
    message: str,
    suggestion: str = "",
    *,
    actions: list[RecoveryAction] | None = None,
    details: dict[str, object] | None = None,
) -> RobotError:
    """A RobotError for a documented code; retryability comes from ``errors.CODES``."""
    info = CODES[code]
    return RobotError(
        code=code,
        message=message,
        suggestion=suggestion,
        retryable=info.retryable,
        actions=actions or [],
        details=dict(details or {}),
    )


def rpc_exception(error: RobotError) -> JsonRpcException:
    """The wire error for ``error``: its code's JSON-RPC number, its message, itself as ``data``."""
    # enc_hook=str: a detail of an unexpected type (a Path, say) degrades to text, never to a
    # serialisation failure that would leave the request unanswered.
    data = msgspec.to_builtins(error, enc_hook=str)
    return JsonRpcException(message=error.message, code=CODES[error.code].rpc_code, data=data)


def protocol_failure(code: str, message: str, suggestion: str = "") -> JsonRpcException:
    return rpc_exception(robot_error(code, message, suggestion))
