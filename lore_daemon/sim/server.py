"""Running the simulator: ``serve()`` for an event loop, ``SimServer`` for a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType

from lore_daemon.errors import InvalidParamsError, LoreError
from lore_daemon.sim.app import SimApp
from lore_daemon.sim.config import SimConfig
from lore_daemon.sim.control import SimControl
from lore_daemon.sim.http import HttpServer


async def serve(config: SimConfig, stop: asyncio.Event, on_ready: Callable[[SimApp], None]) -> None:
    """Bind, build the data set, serve until ``stop`` is set, then close every connection."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.create_server((config.host, config.port), family=family, backlog=1024)
    port = sock.getsockname()[1]
    host = f"[{config.host}]" if family == socket.AF_INET6 else config.host
    app = SimApp(config, f"http://{host}:{port}")
    http = HttpServer(app)
    await http.listen(sock)
    try:
        on_ready(app)
        await stop.wait()
    finally:
        await http.shutdown()


class SimServer:
    """The simulator in a background thread of this process.

    ::

        with SimServer(SimConfig(issues=50)) as sim:
            httpx.get(f"{sim.base_url}/api/v4/user", headers={"PRIVATE-TOKEN": sim.token})
            sim.control.add_fault(r"/issues$", statuses=[502, 200])
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._app: SimApp | None = None
        self._control: SimControl | None = None

    def start(self, timeout: float = 60.0) -> SimServer:
        """Start serving; returns once the socket listens and the data set is built."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="lore-sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise LoreError("the simulator did not start in time", "INTERNAL")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error
        return self

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await serve(self.config, self._stop, self._on_ready)

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
        finally:
            self._ready.set()

    def _on_ready(self, app: SimApp) -> None:
        self._app = app
        self._ready.set()

    def stop(self) -> None:
        """Stop serving, drop open connections and join the thread. Safe to call twice."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
        self._thread = None
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._error is not None:  # the serving thread failed: surface it rather than lose it
            error, self._error = self._error, None
            raise error

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def app(self) -> SimApp:
        """The live state (same thread rules as the loop: read-only from other threads)."""
        if self._app is None:
            raise InvalidParamsError("the simulator is not running", "INVALID_PARAMS")
        return self._app

    @property
    def base_url(self) -> str:
        return self.app.base_url

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def token(self) -> str:
        return self.config.token

    @property
    def control(self) -> SimControl:
        if self._control is None:
            self._control = SimControl(self.base_url)
        return self._control
