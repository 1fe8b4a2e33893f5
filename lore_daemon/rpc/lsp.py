"""The pygls protocol and converter, adjusted for a custom-method JSON-RPC daemon.

Each override fixes a pygls default that would leave a client without an answer or leak internals:

* params of ``lore/*`` methods stay raw JSON (the default converter turns them into namedtuples
  with renamed keys, and never answers a request without ``params``);
* ``initialize`` advertises the ``lore/*`` methods under ``capabilities.experimental.lore``;
* a request after ``shutdown`` gets ``-32600`` instead of silence;
* a request reusing the id of a request still pending gets ``-32600`` (the pending one runs on);
* a notification method sent with an id (as a request) gets ``-32600`` instead of silence;
* ``exit`` hands its exit code to the transport instead of calling ``sys.exit`` mid-loop;
* an unexpected exception becomes ``INTERNAL`` with a generic message — no traceback in ``data``;
* every error's ``data`` is a ``RobotError``, and expected errors are not logged as tracebacks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from concurrent.futures import Future
from typing import Any

import cattrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcMethodNotFound
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    LanguageServerProtocol,
    default_converter,
    lsp_method,
)

from lore_daemon.errors import CODES
from lore_daemon.rpc.errors import protocol_failure

log = logging.getLogger(__name__)

PROGRESS_NOTIFICATION = "lore/progress"
# LSP methods that are notifications: lsprotocol gives them no response type.
LSP_NOTIFICATIONS = frozenset(m for m, kinds in types.METHOD_TO_TYPES.items() if kinds[1] is None)
_MESSAGE_FIELDS = ("id", "method", "jsonrpc", "params", "result")


def _keep_raw(obj: dict[str, Any], cls: type[Any]) -> Any:
    """Build a generic message with ``params``/``result`` left as plain JSON values."""
    fields = {k: obj[k] for k in _MESSAGE_FIELDS if k in obj}
    if cls is not JsonRPCResponseMessage:
        fields.setdefault("params", None)
        fields.pop("result", None)
    else:
        fields.setdefault("result", None)
    return cls(**fields)


def raw_params_converter() -> cattrs.Converter:
    """pygls' converter, except that custom messages keep their params as raw dicts."""
    converter: cattrs.Converter = default_converter()  # type: ignore[no-untyped-call]
    for cls in (JsonRPCRequestMessage, JsonRPCNotification, JsonRPCResponseMessage):
        converter.register_structure_hook(cls, _keep_raw)
    return converter


def _describe_structure_error(exc: Exception) -> str:
    if isinstance(exc, cattrs.ClassValidationError):
        return "; ".join(cattrs.transform_error(exc, path="$.params"))[:500]
    return type(exc).__name__


# pygls' own errors (e.g. from its built-in LSP handlers) carry no RobotError: give them one.
_CODE_FOR_RPC = {
    -32700: "PARSE_ERROR",
    -32600: "INVALID_REQUEST",
    -32601: "METHOD_NOT_FOUND",
    -32602: "INVALID_PARAMS",
    -32800: "CANCELLED",
}


def _with_robot_data(exc: JsonRpcException) -> JsonRpcException:
    data = exc.data
    if isinstance(data, dict) and data.get("code") in CODES:
        return exc
    code = _CODE_FOR_RPC.get(exc.code)
    if code is None:
        return protocol_failure("INTERNAL", "The daemon could not serve the request; see its log.")
    return JsonRpcException(exc.message, exc.code, protocol_failure(code, exc.message).data)


class LoreProtocol(LanguageServerProtocol):
    """LSP lifecycle from pygls, with the daemon's answers for every edge pygls leaves silent."""

    def __init__(self, server: Any, converter: cattrs.Converter) -> None:
        super().__init__(server, converter)
        # Set by the transport: receives the exit code when the client sends ``exit``.
        self.exit_hook: Callable[[int], None] | None = None
        # Ids of the client's requests not answered yet (every answer goes through _send_response).
        self._pending_ids: set[Any] = set()

    @property
    def is_shut_down(self) -> bool:
        return self._shutdown

    def lore_methods(self) -> list[str]:
        return sorted(name for name in self.fm.features if name.startswith("lore/"))

    # ------------------------------------------------------------------------------ lifecycle

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(
        self, params: types.InitializeParams
    ) -> Generator[Any, Any, types.InitializeResult]:
        result = yield from super().lsp_initialize(params)
        result.capabilities.experimental = {
            "lore": {"methods": self.lore_methods(), "notifications": [PROGRESS_NOTIFICATION]}
        }
        return result

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> Generator[Any, Any, None]:
        """LSP: exit code 0 after ``shutdown``, 1 without. The transport does the actual exit."""
        if (user_handler := self.fm.features.get(types.EXIT)) is not None:
            yield user_handler, args, None
        code = 0 if self._shutdown else 1
        if self.exit_hook is not None:
            self.exit_hook(code)
        else:  # pragma: no cover - only without a transport (never in the daemon)
            raise SystemExit(code)

    def handle_message(self, message: Any) -> None:
        method = getattr(message, "method", None)
        if self._shutdown and method not in (None, types.EXIT) and hasattr(message, "id"):
            error = protocol_failure(
                "INVALID_REQUEST",
                f"{method} arrived after shutdown; the daemon now only accepts exit.",
                "Send exit, then start a new daemon session.",
            )
            self._send_response(message.id, error=error.to_response_error())
            return
        if method is not None and hasattr(message, "id"):  # a request
            if message.id in self._pending_ids:
                error = protocol_failure(
                    "INVALID_REQUEST",
                    f"id {message.id!r} is already used by a pending request; that request runs on.",
                    "Give every request an id not used by another request still in flight.",
                )
                log.warning("rejected a %s request reusing pending id %r", method, message.id)
                self._send_response(message.id, error=error.to_response_error())
                return
            self._pending_ids.add(message.id)
        super().handle_message(message)

    def _send_response(self, msg_id: Any, result: Any | None = None, error: Any | None = None) -> None:
        """Every answer to a client request passes here: its id is free for reuse from now on."""
        self._pending_ids.discard(msg_id)
        super()._send_response(msg_id, result, error)

    # ------------------------------------------------------------------------------ messages

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Like pygls', without logging a traceback and with a RobotError for bad LSP params."""
        if "jsonrpc" not in data:
            return data
        if "id" in data and data.get("method") in LSP_NOTIFICATIONS:
            raise protocol_failure(
                "INVALID_REQUEST",
                f"{data['method']} is a notification: it takes no id and gets no answer.",
                "Send it without an id.",
            )
        try:
            if "id" in data:
                if "error" in data:
                    return self._converter.structure(data, types.ResponseErrorMessage)
                if "method" in data:
                    request_type = self.get_message_type(data["method"]) or JsonRPCRequestMessage
                    return self._converter.structure(data, request_type)
                response_type = self._result_types.pop(data["id"], None) or JsonRPCResponseMessage
                return self._converter.structure(data, response_type)
            notification_type = self.get_message_type(data.get("method", "")) or JsonRPCNotification
            return self._converter.structure(data, notification_type)
        except Exception as exc:
            detail = _describe_structure_error(exc)
            log.info("message %r does not match its LSP type: %s", data.get("method"), detail)
            raise protocol_failure(
                "INVALID_PARAMS",
                f"params of {data.get('method', 'the message')} do not match the LSP type: {detail}",
                "Send params as the LSP specification defines them.",
            ) from None

    def _handle_response(self, msg_id: Any, result: Any | None = None, error: Any | None = None) -> None:
        """A late reply to a request the daemon gave up on (e.g. a timed-out progress create)."""
        future = self._request_futures.get(msg_id)
        if future is not None and future.done():
            self._request_futures.pop(msg_id, None)
            log.info("ignoring a late response to request %r", msg_id)
            return
        super()._handle_response(msg_id, result, error)

    def _get_handler(self, feature_name: str) -> Any:
        try:
            return super()._get_handler(feature_name)
        except JsonRpcMethodNotFound:
            failure = protocol_failure(
                "METHOD_NOT_FOUND",
                f"Method Not Found: {feature_name}",
                "Call lore/robotDocs for the list of methods.",
            )
            raise JsonRpcMethodNotFound(failure.message, failure.code, failure.data) from None

    def _send_handler_result(self, future: Future[Any], *, msg_id: Any) -> None:
        """Answer a finished handler. Never lets a traceback reach the client."""
        self._request_futures.pop(msg_id, None)
        if future.cancelled():
            error: JsonRpcException = protocol_failure(
                "CANCELLED",
                f'Request with id "{msg_id}" is canceled',
                "Send the request again if it is still needed.",
            )
        else:
            exc = future.exception()
            if exc is None:
                self._send_response(msg_id, result=future.result())
                return
            if isinstance(exc, JsonRpcException):
                log.debug("request %s answered with error %s: %s", msg_id, exc.code, exc.message)
                error = _with_robot_data(exc)
            else:
                log.error("unexpected failure serving request %s", msg_id, exc_info=exc)
                error = protocol_failure(
                    "INTERNAL",
                    "The daemon hit an unexpected internal error; its log has the details.",
                    "Retry; if it keeps failing, report it with the daemon log (--log-file).",
                )
        self._send_response(msg_id, error=error.to_response_error())
