"""``lore-daemon``: the stdio JSON-RPC server, or ``lore-daemon sim ...`` for the GitLab simulator."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lore_daemon import __version__


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
    return parser


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
    return run_stdio(settings, sys.stdin.buffer, protocol_out)
