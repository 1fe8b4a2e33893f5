"""Reads never wait for writes: ``lore/get``, ``lore/list`` and ``lore/search`` answer while the
database's write lock is held and the daemon's own writer is stuck behind it with a standard sync.

No timing is asserted: the test holds the write lock until every read has answered, so a read
that needed the writer (or the write lock) could never answer and the test would time out.
"""

from __future__ import annotations

import asyncio

import apsw

from lore_daemon.sim import SimServer
from tests.daemon.support import ClientPool, DaemonEnv, rpc

from .support import PROJECT


async def test_reads_answer_while_the_write_lock_is_held_and_a_sync_waits(
    clients: ClientPool, env: DaemonEnv, sim: SimServer
) -> None:
    for iid in range(20, 30):
        sim.control.mutate("bump_issue", project=PROJECT, iid=iid)  # the sync will have work to write
    client = await clients.start(env)
    await rpc(client, "lore/list", {"limit": 1})  # the database is open and warm

    holder = apsw.Connection(str(env.db_path))  # another "process" as far as SQLite is concerned
    holder.set_busy_timeout(5000)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE issues SET title = title WHERE iid = 1")
    try:
        sync = asyncio.ensure_future(rpc(client, "lore/sync", {}, timeout=60))
        await asyncio.sleep(0.5)  # the sync's first write is now waiting for the lock
        assert not sync.done()
        got, page, found = await asyncio.gather(
            rpc(client, "lore/get", {"ref": "#21", "include": ["discussions", "links", "events"]}),
            rpc(client, "lore/list", {"limit": 200, "state": "opened"}),
            rpc(client, "lore/search", {"query": "cache", "limit": 20}),
        )
        status = await rpc(client, "lore/status", {})
        assert not sync.done()  # every read answered while the writer was still blocked
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    result = await sync
    assert got["iid"] == 21 and page["items"] and found["hits"] and status["version"]
    assert result["status"] == "succeeded" and result["counters"]["issuesIngested"] >= 10
    after = await rpc(client, "lore/get", {"ref": "#21", "include": []})
    assert after["updatedAt"] != got["updatedAt"]  # the read before saw the state before the sync
