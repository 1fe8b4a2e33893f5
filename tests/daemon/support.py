"""Helpers for the daemon tests: the daemon runs as a real subprocess over real stdio.

Two kinds of client:

* ``start_client`` — pytest-lsp's ``LanguageClient`` (pygls), with a keep-raw converter so custom
  results arrive as plain dicts; it records ``lore/progress`` notifications in ``lore_progress``
  and ``$/progress`` in ``progress_reports``.
* ``RawDaemon`` — hand-framed bytes over a pipe, for malformed frames, EOF and signals, and the
  property test (blocking I/O with a per-request timeout, so a hang is a failure, not a stall).

Every daemon gets its own config file, SQLite file (``LORE_DB_PATH``) and environment in
``tmp_path``; the GitLab token is passed only through the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    default_converter,
)
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import register_lsp_features

from tests.support.config import EMBEDDING_OFF, write_config

TOKEN = "glpat-TEST-only-5ecret-Value-0123456789"
UNREACHABLE_GITLAB = "http://127.0.0.1:9"  # discard port: nothing listens there
DAEMON = [sys.executable, "-m", "lore_daemon"]


# ------------------------------------------------------------------------------------ environment


@dataclass
class DaemonEnv:
    """Files and environment of one daemon: config in tmp, db in tmp, token only in env."""

    tmp: Path
    config_path: Path
    db_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def write_config(
        self,
        base_url: str = UNREACHABLE_GITLAB,
        projects: tuple[str, ...] = ("group/project",),
        extra: str = "",
        embedding: str | None = EMBEDDING_OFF,
    ) -> None:
        write_config(
            self.config_path.parent, base_url, token_env="GITLAB_TOKEN", projects=projects,
            sync={"lock_timeout_ms": 2000, "stale_lock_ms": 5000}, embedding=embedding, extra=extra,
        )

    def with_token(self, token: str = TOKEN) -> DaemonEnv:
        self.env["GITLAB_TOKEN"] = token
        return self


def new_daemon_env(tmp: Path) -> DaemonEnv:
    """A private environment: no inherited GitLab/lore variables, config and db under ``tmp``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITLAB_", "LORE_"))}
    denv = DaemonEnv(tmp=tmp, config_path=tmp / "config.toml", db_path=tmp / "lore.db")
    env.update(
        LORE_CONFIG_PATH=str(denv.config_path),
        LORE_DB_PATH=str(denv.db_path),
        HOME=str(tmp),
        XDG_CONFIG_HOME=str(tmp / "xdg"),
    )
    denv.env = env
    denv.write_config()
    return denv


# ------------------------------------------------------------------------------------ pytest-lsp


def _keep_raw(obj: dict[str, Any], cls: type[Any]) -> Any:
    """Custom results and notification params stay plain JSON (pygls would make namedtuples)."""
    if cls is JsonRPCResponseMessage:
        return cls(id=obj.get("id"), jsonrpc=obj["jsonrpc"], result=obj.get("result"))
    if cls is JsonRPCRequestMessage:
        return cls(id=obj["id"], method=obj["method"], jsonrpc=obj["jsonrpc"], params=obj.get("params"))
    return cls(method=obj["method"], jsonrpc=obj["jsonrpc"], params=obj.get("params"))


def keep_raw_converter() -> Any:
    converter = default_converter()
    for cls in (JsonRPCRequestMessage, JsonRPCNotification, JsonRPCResponseMessage):
        converter.register_structure_hook(cls, _keep_raw)
    return converter


class LoreTestClient(LanguageClient):
    lore_progress: list[dict[str, Any]]


def make_client() -> LoreTestClient:
    client = LoreTestClient(converter_factory=keep_raw_converter)
    register_lsp_features(client)
    client.lore_progress = []

    @client.feature("lore/progress")
    def on_progress(params: Any) -> None:
        client.lore_progress.append(params)

    return client


class ClientPool:
    """Starts pytest-lsp clients and, at teardown, ends every daemon still running."""

    def __init__(self) -> None:
        self.clients: list[LoreTestClient] = []

    async def start(
        self,
        denv: DaemonEnv,
        *,
        initialize: bool = True,
        work_done_progress: bool = False,
        init_options: Any = None,
        args: tuple[str, ...] = (),
    ) -> LoreTestClient:
        config = ClientServerConfig(
            server_command=[*DAEMON, *args], server_env=denv.env, client_factory=make_client
        )
        client = await config.start()
        assert isinstance(client, LoreTestClient)
        self.clients.append(client)
        if initialize:
            caps = types.ClientCapabilities(
                window=types.WindowClientCapabilities(work_done_progress=work_done_progress)
            )
            await asyncio.wait_for(
                client.initialize_session(
                    types.InitializeParams(capabilities=caps, initialization_options=init_options)
                ),
                10,
            )
        return client

    async def close_all(self) -> None:
        for client in self.clients:
            server = client._server
            if server is not None and server.returncode is None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.shutdown_session(), 10)
                if server.returncode is None and server.stdin is not None:
                    server.stdin.close()
                    try:
                        await asyncio.wait_for(server.wait(), 10)
                    except TimeoutError:
                        server.kill()
            await asyncio.wait_for(client.stop(), 10)


async def rpc(client: LanguageClient, method: str, params: Any = None, *, timeout: float = 20) -> Any:
    return await asyncio.wait_for(client.protocol.send_request_async(method, params), timeout)


# ------------------------------------------------------------------------------------ raw pipe


class RawDaemon:
    """The daemon over a bare pipe: write any bytes, read frames with a deadline."""

    def __init__(self, denv: DaemonEnv, args: tuple[str, ...] = ()) -> None:
        self.log_path = denv.tmp / f"daemon-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [*DAEMON, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=denv.env
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self._out = self.proc.stdout.fileno()
        self._buf = b""
        self._next_id = 0

    # -- writing
    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send_body(self, body: bytes) -> None:
        self.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def send(self, message: Any) -> None:
        self.send_body(json.dumps(message).encode())

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    # -- reading
    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no frame from the daemon before the deadline")
        ready, _, _ = select.select([self._out], [], [], remaining)
        if not ready:
            raise TimeoutError("no frame from the daemon before the deadline")
        chunk = os.read(self._out, 65536)
        if not chunk:
            raise EOFError("the daemon closed stdout")
        self._buf += chunk

    def read_frame(self, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self._buf:
            self._fill(deadline)
        head, _, rest = self._buf.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
        while len(rest) < length:
            self._buf = head + b"\r\n\r\n" + rest
            self._fill(deadline)
            head, _, rest = self._buf.partition(b"\r\n\r\n")
        self._buf = rest[length:]
        message: dict[str, Any] = json.loads(rest[:length])
        return message

    def read_response(self, msg_id: Any, timeout: float = 10.0) -> dict[str, Any]:
        """The response with ``msg_id`` (None: an id-null error); notifications are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.read_frame(max(0.001, deadline - time.monotonic()))
            if "method" in message:
                if "id" in message:  # a request from the daemon (progress create): answer it
                    self.send({"jsonrpc": "2.0", "id": message["id"], "result": None})
                continue
            if message.get("id") == msg_id:
                return message

    def request(
        self, method: str, params: Any = None, *, timeout: float = 10.0, omit_params: bool = False
    ) -> Any:
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if not omit_params:
            message["params"] = params
        self.send(message)
        return self.read_response(self._next_id, timeout)

    def initialize(self) -> dict[str, Any]:
        response = self.request("initialize", {"processId": os.getpid(), "capabilities": {}})
        self.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        return response

    def wait(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout)

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.close_stdin()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()




# ------------------------------------------------------------------------------------ seeding


@dataclass(frozen=True)
class SeedRun:
    run_id: str
    status: str
    started_ms: int
    mode: str = "surgical"
    project: str | None = "group/project"
    heartbeat_ms: int | None = None  # running rows: last heartbeat (default: started_ms)


def seed_ledger(db_path: Path, runs: list[SeedRun], *, lock_owner: str | None = None) -> None:
    """Write ledger rows (and optionally a held ``sync`` lock) through the store API, before spawn."""
    from lore_daemon.protocol import RequestedTargets
    from lore_daemon.store import ledger, locks
    from lore_daemon.store.connection import Database

    def work(conn: Any) -> None:
        for run in runs:
            ledger.start_run(
                conn,
                run_id=run.run_id,
                mode=run.mode,  # type: ignore[arg-type]
                phase="preflight" if run.mode == "surgical" else "ingest",
                project=run.project,
                requested=RequestedTargets(issues=[1, 2], projects=[run.project] if run.project else []),
                owner="seed:1:0",
                pid=1,
                now_ms=run.heartbeat_ms or run.started_ms,
            )
            if run.heartbeat_ms is not None:
                conn.execute(
                    "UPDATE sync_runs SET started_at = ? WHERE run_id = ?", (run.started_ms, run.run_id)
                )
            if run.status != "running":
                ledger.finish_run(
                    conn, run.run_id, status=run.status, now_ms=run.started_ms + 50  # type: ignore[arg-type]
                )
        if lock_owner is not None:
            locks.try_acquire(
                conn, "sync", owner=lock_owner, run_id=None, pid=os.getpid(),
                now_ms=int(time.time() * 1000), stale_ms=3_600_000,
            )

    db = Database(db_path)
    db.open()
    try:
        db.write_sync(work)
    finally:
        db.close()
