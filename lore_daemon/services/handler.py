"""Turn a ``MethodSpec`` into the async pygls handler every request goes through."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from lore_daemon.errors import ProtocolError
from lore_daemon.services.error_mapping import to_rpc_error
from lore_daemon.services.params import parse_params
from lore_daemon.services.runtime import Runtime
from lore_daemon.services.spec import Call, MethodSpec

Handler = Callable[[Any], Awaitable[Any]]


def make_handler(runtime: Runtime, spec: MethodSpec) -> Handler:
    """Validate params, serve, map failures to RobotError JSON-RPC errors, return builtins.

    The task is registered with the runtime for its whole life so shutdown can cancel and await
    it. ``CancelledError`` passes through untouched: pygls then answers -32800.
    """

    async def handle(raw_params: Any) -> Any:
        task = asyncio.current_task()
        assert task is not None  # pygls runs async handlers as tasks
        call = Call(spec.name)
        runtime.track(task)
        try:
            if runtime.stopping:
                raise ProtocolError(
                    f"{spec.name} arrived while the daemon is shutting down.",
                    "INVALID_REQUEST",
                    "Start a new daemon session and send it there.",
                )
            params = parse_params(spec.name, raw_params, spec.params_type)
            call = Call(spec.name, params)
            result = await spec.serve(runtime, params, call)
            return msgspec.to_builtins(result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise to_rpc_error(exc, call) from None
        finally:
            runtime.untrack(task)

    handle.__name__ = handle.__qualname__ = "lore_" + spec.name.removeprefix("lore/")
    return handle
