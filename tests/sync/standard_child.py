"""Child process for the multi-process standard-sync tests: one "daemon" running one standard sync.

Usage: python -m tests.sync.standard_child CONFIG_PATH, from the repository root (the token comes
from the env var the config names)

It builds an engine exactly as the daemon does, prints ``{"event": "started", "pid": ...}``, runs
``lore/sync`` once and prints the ``SyncResult`` as one JSON line, so the parent can kill it at any
moment or read its outcome.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import msgspec

from lore_daemon import protocol
from lore_daemon.sync.standard import run_standard_sync
from tests.support.engine import build_engine


async def main(config_path: str) -> None:
    engine = build_engine(Path(config_path), retry=None)  # exactly as the daemon builds it
    print(json.dumps({"event": "started", "pid": os.getpid()}), flush=True)
    try:
        result = await run_standard_sync(engine, protocol.SyncParams(), lambda note: None)
    finally:
        await engine.aclose()
    print(json.dumps({"event": "result", "result": msgspec.to_builtins(result)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
