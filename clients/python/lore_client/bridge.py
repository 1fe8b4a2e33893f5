"""``lore``: the shell bridge to lore-daemon.

Output: the typed payload as JSON on stdout when stdout is not a terminal (or with ``--json``); a
human summary and a live progress line on stderr otherwise. The exit code says what class of
error happened (``lore_daemon.errors.CODES`` gives each error code its exit code), so scripts can
branch without parsing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from lore_client.client import LoreClient
from lore_client.rpc import ConnectionClosed, RpcError
from lore_client.shared import default_socket_path, ensure_daemon, stop_daemon
from lore_daemon import protocol, recovery
from lore_daemon.errors import CODES, EXIT_CANCELLED, EXIT_INTERNAL, EXIT_PARTIAL, EXIT_SUCCESS, DaemonError


def exit_code_for_error(code: str | None) -> int:
    """The exit code ``errors.CODES`` gives the error code (1 for none or an unknown one)."""
    info = CODES.get(code) if code is not None else None
    return info.exit_code if info is not None else EXIT_INTERNAL


def exit_code_for_result(result: protocol.SyncResult) -> int:
    if result.status in ("succeeded", "running"):
        return EXIT_SUCCESS
    if result.status == "partial":
        return EXIT_PARTIAL
    if result.status == "cancelled":
        return EXIT_CANCELLED
    return exit_code_for_error(result.error.code if result.error else None)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lore", description="Shell bridge to lore-daemon.")
    p.add_argument("--json", action="store_true", help="print the JSON payload even on a terminal")
    p.add_argument("--no-shared", action="store_true",
                   help="spawn a private daemon over stdio instead of using the shared one on $LORE_SOCKET")
    p.add_argument("--daemon", default=None, help="daemon command (default: python -m lore_daemon)")
    p.add_argument("--progress", action="store_true", help="print every progress event as a line on stderr")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sync", help="surgical sync of named targets, or a standard sync with none")
    s.add_argument("-p", "--project", action="append", default=[],
                   help="project path; with no targets, repeatable: a standard sync of those projects")
    s.add_argument("--issue", type=int, action="append", default=[])
    s.add_argument("--mr", type=int, action="append", default=[])
    s.add_argument("--issue-url", action="append", default=[])
    s.add_argument("--mr-url", action="append", default=[])
    s.add_argument("--ref", action="append", default=[])
    s.add_argument("--dry-run", action="store_true")
    s.add_argument("--preflight-only", action="store_true")
    s.add_argument("--no-embed", action="store_true")
    s.add_argument("--reembed", action="store_true",
                   help="standard sync only: embed every document again, reusing no stored vector")
    r = sub.add_parser("sync-runs", help="read the run ledger, newest first")
    r.add_argument("--limit", type=int, default=20)
    r.add_argument("--run-id")
    r.add_argument("--state", choices=["running", "succeeded", "partial", "failed", "cancelled"])
    sub.add_parser("status", help="daemon and store status")
    sub.add_parser("robot-docs", help="the machine-readable manifest")
    sub.add_parser("rpc", help="newline-delimited JSON-RPC requests on stdin, JSON lines on stdout")
    d = sub.add_parser("daemon", help="manage the shared daemon")
    d.add_argument("action", choices=["stop"], help="stop: SIGTERM the shared daemon and wait until it exits")
    return p


class _Printer:
    def __init__(self, as_json: bool, lines: bool = False) -> None:
        self.as_json = as_json
        self.lines = lines
        self.live = sys.stderr.isatty() and not lines

    def progress(self, note: protocol.ProgressNotification) -> None:
        if not (self.live or self.lines):
            return
        entity = f" {note.entity.kind} {note.entity.iid}" if note.entity else ""
        line = f"[{note.phase}:{note.event}]{entity} {note.message} ({note.elapsed_ms} ms)"
        sys.stderr.write(line + "\n" if self.lines else "\r\033[K" + line[:160])
        sys.stderr.flush()

    def payload(self, obj: Any) -> None:
        if self.live:
            sys.stderr.write("\r\033[K")
        data = msgspec.to_builtins(obj) if isinstance(obj, msgspec.Struct) else obj
        if self.as_json:
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
        else:
            sys.stderr.write(_summary(data) + "\n")


def _summary(data: Any) -> str:
    if isinstance(data, dict) and "entities" in data and "status" in data:
        lines = [f"run {data.get('runId')}: {data['status']} (phase {data['phase']})"]
        lines += [f"  {e['kind']} {e['iid']}: {e['outcome']}" for e in data["entities"]]
        lines += [f"  FAILED {f['kind']} {f['iid']} [{f['stage']}] {f['code']}: {f['message']}"
                  for f in data.get("entityFailures", [])]
        lines += [f"  -> {a['title']}: {a.get('command') or ''}" for a in data.get("recoveryActions", [])]
        return "\n".join(lines)
    if isinstance(data, dict) and "schemaVersion" in data and data.get("embedding"):
        return json.dumps(data, indent=2) + "\n" + _embedding_line(data["embedding"])
    return json.dumps(data, indent=2)


def _embedding_line(e: dict[str, Any]) -> str:
    """``lore status`` on a terminal ends with one line on embeddings."""
    if e["provider"] == "none":
        return "embedding: off (provider none): search is lexical"
    line = (f"embedding: {e['provider']} {e['model']} ({e['dimensions'] or '?'} dims), {e['state']}, "
            f"{e['currentDocuments']}/{e['documents']} documents with current vectors")
    if e.get("error"):
        line += f"; last error {e['error']['code']}: {e['error']['message']}"
    return line


def request_for(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The JSON-RPC call a command line makes: method and params as sent (before any progress
    token). Recovery actions' ``command`` lines parse back to exactly their ``request`` here."""
    params: msgspec.Struct
    if args.command == "sync":
        targets: dict[str, Any] = {
            "project": args.project[-1] if args.project else None, "issues": args.issue, "mrs": args.mr,
            "issue_urls": args.issue_url, "mr_urls": args.mr_url, "refs": args.ref,
        }
        if not any((args.issue, args.mr, args.issue_url, args.mr_url, args.ref)):
            params = protocol.SyncParams(
                projects=args.project or None, no_embed=args.no_embed, reembed=args.reembed
            )
        elif args.preflight_only:
            params = protocol.PreflightParams(**targets)
        else:
            params = protocol.SyncSurgicalParams(**targets, dry_run=args.dry_run, no_embed=args.no_embed)
    elif args.command == "sync-runs":
        params = protocol.SyncRunsParams(limit=args.limit, run_id=args.run_id, status=args.state)
    elif args.command == "status":
        params = protocol.StatusParams()
    elif args.command == "robot-docs":
        params = protocol.RobotDocsParams()
    else:
        raise ValueError(f"`lore {args.command}` sends no single request")
    request = recovery.request_for(params)
    return request.method, request.params


_RESULT_TYPES: dict[str, type[Any]] = {
    "lore/preflight": protocol.PreflightResult, "lore/syncSurgical": protocol.SyncResult,
    "lore/sync": protocol.SyncResult, "lore/syncRuns": protocol.SyncRunsResult,
    "lore/status": protocol.StatusResult, "lore/robotDocs": dict,
}
_WITH_PROGRESS = frozenset({"lore/preflight", "lore/syncSurgical", "lore/sync"})


@contextlib.asynccontextmanager
async def _client(args: argparse.Namespace) -> AsyncIterator[LoreClient]:
    """A private stdio daemon with ``--no-shared``; else the shared one, started on first use."""
    command = args.daemon.split() if args.daemon else None
    if args.no_shared:
        async with LoreClient.connect(command=command) as client:
            yield client
        return
    sock = default_socket_path(os.environ)
    connection = LoreClient.connect_shared(sock)
    try:
        client = await connection.__aenter__()  # a warm daemon answers: the common, fast path
    except OSError:
        await asyncio.to_thread(ensure_daemon, sock, command=command, env=os.environ)
        connection = LoreClient.connect_shared(sock)
        try:
            client = await connection.__aenter__()
        except OSError as exc:  # it went away between start and connect (idle timeout, a stop)
            message = f"the shared daemon on {sock} stopped answering ({exc.strerror or exc})."
            retry = "Run the command again: it starts a new daemon."
            raise DaemonError(message, "DAEMON_UNAVAILABLE", retry) from None
    try:
        yield client
    finally:
        await connection.__aexit__(None, None, None)


def _daemon_command(args: argparse.Namespace, printer: _Printer) -> int:
    sock = default_socket_path(os.environ)
    pid = stop_daemon(sock)
    printer.payload({"socket": str(sock), "stopped": pid is not None, "pid": pid})
    return 0


async def _run(args: argparse.Namespace, printer: _Printer) -> int:
    async with _client(args) as client:
        if args.command == "rpc":
            return await _rpc_loop(client)
        if args.command == "sync" and len(set(args.project)) > 1 and request_for(args)[0] != "lore/sync":
            printer.payload({"error": {"code": "MIXED_PROJECTS",
                                       "message": "a surgical sync names one project (-p)"}})
            return exit_code_for_error("MIXED_PROJECTS")
        method, params = request_for(args)
        try:
            progress = printer.progress if method in _WITH_PROGRESS else None
            result = await client.call(method, params, _RESULT_TYPES[method], progress)
            printer.payload(result)
            if isinstance(result, protocol.SyncResult):
                return exit_code_for_result(result)
            if isinstance(result, protocol.PreflightResult) and not result.ok:
                return exit_code_for_error(_preflight_code(result))
            return 0
        except RpcError as err:
            printer.payload({"error": {"code": err.code, "message": err.message, "data": err.data}})
            return exit_code_for_error(err.robot_code)


def _preflight_code(pre: protocol.PreflightResult) -> str:
    if not pre.auth.ok:
        return "GITLAB_AUTH_FAILED"
    return "PREFLIGHT_FAILED"


async def _rpc_loop(client: LoreClient) -> int:
    """Each stdin line is a request ``{"method", "params", "id"?}``; every frame is echoed as a line."""
    loop = asyncio.get_running_loop()

    def echo(method: str, params: Any) -> None:
        sys.stdout.write(json.dumps({"method": method, "params": params}) + "\n")
        sys.stdout.flush()

    client._endpoint.add_notification_handler(echo)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return 0
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            result = await client._endpoint.request(req["method"], req.get("params"))
            out: dict[str, Any] = {"id": req.get("id"), "result": result}
        except RpcError as err:
            out = {"id": req.get("id"), "error": {"code": err.code, "message": err.message, "data": err.data}}
        except (ValueError, KeyError, TypeError) as exc:
            out = {"id": None, "error": {"code": -32700, "message": f"bad request line: {exc}"}}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    printer = _Printer(as_json=args.json or not sys.stdout.isatty(), lines=args.progress)
    try:
        if args.command == "daemon":
            return _daemon_command(args, printer)
        return asyncio.run(_run(args, printer))
    except DaemonError as exc:
        printer.payload({"error": {"code": exc.code, "message": exc.message, "suggestion": exc.suggestion}})
        return exit_code_for_error(exc.code)
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    except ConnectionClosed as exc:
        sys.stderr.write(f"lore: the daemon closed the connection ({exc})\n")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
