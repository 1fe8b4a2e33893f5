"""``lore-daemon``: the stdio JSON-RPC server, the shared socket daemon (``--socket PATH``), or
``lore-daemon sim ...`` for the GitLab simulator."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lore_daemon import __version__

if TYPE_CHECKING:
    from lore_daemon.services.runtime import DaemonSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lore-daemon",
        description=(
            "Keep a local SQLite mirror of GitLab issues and MRs fresh; speaks JSON-RPC 2.0 with "
            "LSP framing on stdin/stdout. `lore-daemon sim --help` runs the GitLab simulator."
        ),
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--log-file", metavar="PATH", help="log here instead of stderr (appended)")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv adds pygls message traces)"
    )
    parser.add_argument(
        "--db", metavar="PATH", help="database file (overrides storage.db_path and $LORE_DB_PATH)"
    )
    parser.add_argument(
        "--config", metavar="PATH", help="configuration file (default: $LORE_CONFIG_PATH, then XDG)"
    )
    parser.add_argument(
        "--socket",
        metavar="PATH",
        help="serve many clients on this Unix socket (mode 0600) instead of one on stdin/stdout",
    )
    parser.add_argument(
        "--idle-timeout",
        metavar="SECONDS",
        type=float,
        default=600.0,
        help="with --socket: exit after this long with no connection (0: never; default 600)",
    )
    return parser


EXIT_ALREADY_RUNNING = 75  # EX_TEMPFAIL: another daemon holds the socket's lock; use that one


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in and args_in[0] == "sim":
        from lore_daemon.sim.__main__ import main as sim_main

        return int(sim_main(args_in[1:]) or 0)
    args = _parser().parse_args(args_in)
    if args.version:
        print(f"lore-daemon {__version__}")
        return 0

    from lore_daemon.logsetup import configure_logging
    from lore_daemon.server import run_stdio
    from lore_daemon.services.runtime import DaemonSettings

    configure_logging(args.log_file, args.verbose, sys.stderr)
    protocol_out = sys.stdout.buffer
    sys.stdout = sys.stderr  # from here on stdout carries protocol frames only
    overrides = {"storage": {"db_path": args.db}} if args.db else {}
    settings = DaemonSettings(config_path=args.config, overrides=overrides)
    if args.socket:
        return _run_socket(settings, args.socket, args.idle_timeout)
    return run_stdio(settings, sys.stdin.buffer, protocol_out)


def _run_socket(settings: DaemonSettings, path: str, idle_timeout_s: float) -> int:
    from pathlib import Path

    from lore_daemon.errors import DaemonError
    from lore_daemon.socket_server import run_socket

    try:
        return run_socket(settings, Path(path).expanduser().absolute(), idle_timeout_s)
    except DaemonError as exc:
        sys.stderr.write(f"lore-daemon: {exc} {exc.suggestion}\n")
        return EXIT_ALREADY_RUNNING if exc.details.get("reason") == "locked" else 1
