"""The private pygls surface the daemon relies on still has the shape it was written against.

``lore_daemon/rpc/lsp.py`` overrides private methods of pygls' ``JsonRPCProtocol`` and reads its
private attributes; ``rpc/stdio.py`` and ``services/progress.py`` call a few more. pygls may change
any of them in a minor release, so ``pyproject.toml`` bounds pygls to the 2.1 series and this test
says exactly what moved when someone widens that bound.
"""

from __future__ import annotations

import inspect
from concurrent.futures import Future
from importlib.metadata import version

import pytest
from pygls.progress import Progress
from pygls.protocol import JsonRPCProtocol, LanguageServerProtocol

from lore_daemon.rpc.lsp import LoreProtocol
from lore_daemon.server import build_server
from lore_daemon.services.runtime import DaemonSettings

# (class, method) -> parameter names after ``self``, with ``*`` before keyword-only ones.
OVERRIDDEN_OR_CALLED = {
    (JsonRPCProtocol, "structure_message"): ["data"],
    (JsonRPCProtocol, "handle_message"): ["message"],
    (JsonRPCProtocol, "_handle_response"): ["msg_id", "result", "error"],
    (JsonRPCProtocol, "_get_handler"): ["feature_name"],
    (JsonRPCProtocol, "_send_handler_result"): ["future", "*", "msg_id"],
    (JsonRPCProtocol, "_send_response"): ["msg_id", "result", "error"],
    (JsonRPCProtocol, "set_writer"): ["writer", "include_headers"],
    (JsonRPCProtocol, "get_message_type"): ["method"],
    (LanguageServerProtocol, "lsp_initialize"): ["params"],
    (LanguageServerProtocol, "lsp_exit"): ["*args"],
}

# Methods of pygls that must still call the private method we override, or our override is dead.
CALLERS = {
    (JsonRPCProtocol, "_handle_request"): [
        "self._get_handler(", "self._send_handler_result", "self._send_response(",
    ],
    (JsonRPCProtocol, "handle_message"): ["self._handle_response"],
}


def _shape(function: object) -> list[str]:
    names: list[str] = []
    for param in list(inspect.signature(function).parameters.values())[1:]:  # type: ignore[arg-type]
        if param.kind is inspect.Parameter.KEYWORD_ONLY and "*" not in names:
            names.append("*")
        names.append(f"*{param.name}" if param.kind is inspect.Parameter.VAR_POSITIONAL else param.name)
    return names


def test_pygls_is_the_minor_series_the_overrides_were_written_for() -> None:
    installed = version("pygls")
    assert installed.startswith("2.1."), (
        f"pygls {installed} is installed, but rpc/lsp.py overrides private methods of pygls 2.1; "
        "check every override against the new release, then widen the bound in pyproject.toml"
    )


@pytest.mark.parametrize(
    ("owner", "name"), sorted(OVERRIDDEN_OR_CALLED, key=lambda k: (k[0].__name__, k[1]))
)
def test_private_pygls_method_keeps_its_signature(owner: type, name: str) -> None:
    method = getattr(owner, name, None)
    assert method is not None, f"pygls {owner.__name__}.{name} is gone; rpc/lsp.py relies on it"
    expected = OVERRIDDEN_OR_CALLED[(owner, name)]
    assert _shape(method) == expected, (
        f"pygls {owner.__name__}.{name} changed shape: {_shape(method)} (rpc/lsp.py expects {expected})"
    )


@pytest.mark.parametrize(("owner", "name"), sorted(CALLERS, key=lambda k: (k[0].__name__, k[1])))
def test_pygls_still_routes_through_the_overridden_methods(owner: type, name: str) -> None:
    source = inspect.getsource(getattr(owner, name))
    for call in CALLERS[(owner, name)]:
        assert call in source, f"pygls {owner.__name__}.{name} no longer calls {call}; an override is dead"


def test_private_pygls_state_the_daemon_reads_exists() -> None:
    server, _ = build_server(DaemonSettings())
    protocol = server.protocol
    assert isinstance(protocol, LoreProtocol)
    assert protocol._shutdown is False
    assert isinstance(protocol._request_futures, dict)
    assert isinstance(protocol._result_types, dict)
    assert protocol._converter is not None
    assert isinstance(protocol.fm.features, dict) and "lore/status" in protocol.fm.features
    assert isinstance(server.work_done_progress, Progress)
    assert isinstance(server.work_done_progress.tokens, dict)
    server.work_done_progress.tokens["t"] = Future()
    assert server.work_done_progress.tokens.pop("t").done() is False
