"""Child process for the multi-process standard-sync tests: one "daemon" running one standard sync.

Usage: python standard_child.py CONFIG_PATH   (the token comes from the env var the config names)

It builds an engine exactly as the daemon does, prints ``{"event": "started", "pid": ...}``, runs
``lore/sync`` once and prints the ``SyncResult`` as one JSON line, so the parent can kill it at any
moment or read its outcome.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import msgspec

from lore_daemon import protocol
from lore_daemon.config import load_config, read_token
from lore_daemon.engine import Engine
from lore_daemon.gitlab.client import GitLabClient
from lore_daemon.store.connection import Database
from lore_daemon.sync.locking import make_owner
from lore_daemon.sync.standard import run_standard_sync


async def main(config_path: str) -> None:
    config = load_config(config_path, env=os.environ)
    db = Database(config.db_path)
    db.open()
    client = GitLabClient(
        config.gitlab.base_url, read_token(config, os.environ).reveal(),
        concurrency=config.sync.primary_concurrency,
    )
    engine = Engine(config=config, db=db, gitlab=client, owner=make_owner())
    print(json.dumps({"event": "started", "pid": os.getpid()}), flush=True)
    try:
        result = await run_standard_sync(engine, protocol.SyncParams(), lambda note: None)
    finally:
        await engine.aclose()
    print(json.dumps({"event": "result", "result": msgspec.to_builtins(result)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
