"""Every failure of a request becomes a JSON-RPC error whose ``data`` is a ``RobotError``.

``LoreError`` subclasses map one to one (code, message, suggestion, details, and the JSON-RPC
number from ``errors.CODES``). Anything else is a bug: it is logged with its traceback on the
daemon side only, and the client gets ``INTERNAL`` with a generic message — no traceback, no paths.
"""

from __future__ import annotations

import logging

from pygls.exceptions import JsonRpcException

from lore_daemon.errors import LoreError
from lore_daemon.protocol import RobotError
from lore_daemon.recovery import actions_for_error
from lore_daemon.rpc.errors import protocol_failure, robot_error, rpc_exception
from lore_daemon.services.spec import Call

log = logging.getLogger(__name__)

_INTERNAL_MESSAGE = "The daemon hit an unexpected internal error; its log has the details."
_INTERNAL_SUGGESTION = "Retry; if it keeps failing, report it with the daemon log (--log-file)."


def robot_error_for(exc: LoreError, call: Call) -> RobotError:
    return robot_error(
        exc.code,
        exc.message,
        exc.suggestion,
        actions=actions_for_error(exc, call.method, call.params),
        details=exc.details,
    )


def to_rpc_error(exc: Exception, call: Call) -> JsonRpcException:
    if isinstance(exc, JsonRpcException):
        return exc
    if isinstance(exc, LoreError):
        log.info("%s failed: %s", call.method, exc)
        return rpc_exception(robot_error_for(exc, call))
    log.error("unexpected failure in %s", call.method, exc_info=exc)
    return protocol_failure("INTERNAL", _INTERNAL_MESSAGE, _INTERNAL_SUGGESTION)
