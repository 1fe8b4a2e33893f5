"""``python -m lore_daemon.sim`` (and ``lore-daemon sim``): serve the simulator until SIGTERM/SIGINT.

Once listening it prints one JSON line, ``{"base_url": ..., "token": ..., "pid": ...}``, to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

from lore_daemon.errors import LoreError
from lore_daemon.sim.app import SimApp
from lore_daemon.sim.config import SimConfig
from lore_daemon.sim.server import serve


def build_parser() -> argparse.ArgumentParser:
    defaults = SimConfig()
    p = argparse.ArgumentParser(prog="lore-daemon sim", description="Serve the seeded GitLab simulator.")
    p.add_argument("--host", default=defaults.host, help="loopback address to bind (default %(default)s)")
    p.add_argument("--port", type=int, default=defaults.port, help="0 picks a free port")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--issues", type=int, default=defaults.issues, help="issues in group/project")
    p.add_argument("--mrs", type=int, default=defaults.mrs, help="merge requests in group/project")
    p.add_argument("--notes-per-entity", type=int, default=defaults.notes_per_entity)
    p.add_argument("--token", default=defaults.token, help="the accepted token (a test value, not a secret)")
    p.add_argument("--latency-ms", type=int, default=defaults.latency_ms)
    p.add_argument("--total-threshold", type=int, default=defaults.total_threshold)
    p.add_argument("--corpus", action="store_true",
                   help="also serve the curated project acme/brightday (realistic text for search)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = SimConfig(
            seed=args.seed,
            issues=args.issues,
            mrs=args.mrs,
            notes_per_entity=args.notes_per_entity,
            token=args.token,
            host=args.host,
            port=args.port,
            total_threshold=args.total_threshold,
            latency_ms=args.latency_ms,
            corpus=args.corpus,
        )
    except LoreError as exc:
        print(json.dumps({"error": exc.code, "message": exc.message}), file=sys.stderr)
        return 2
    asyncio.run(_serve(config))
    return 0


async def _serve(config: SimConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def announce(app: SimApp) -> None:
        line = {"base_url": app.base_url, "token": config.token, "pid": os.getpid()}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    await serve(config, stop, announce)


if __name__ == "__main__":
    sys.exit(main())
