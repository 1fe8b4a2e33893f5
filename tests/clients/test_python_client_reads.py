"""LoreClient's read methods against a real daemon: typed ``get``/``list``/``search``, the
protocol's own field names accepted everywhere, and reconnecting when the shared daemon restarts."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from lore_client.client import LoreClient, params
from lore_client.shared import ensure_daemon, stop_daemon
from lore_daemon import protocol, protocol_read
from lore_daemon.daemon_socket import running_pid

from .conftest import PROJECT, ClientEnv


async def test_typed_reads_with_either_spelling_of_every_field(client_env: ClientEnv) -> None:
    url = f"{client_env.sim.base_url}/{PROJECT}/-/issues/5"
    async with LoreClient.connect(env=client_env.env) as client:
        camel = await client.sync_surgical(issueUrls=[url], mrs=[2])  # the wire name: no TypeError
        snake = await client.sync_surgical(issue_urls=[url], dry_run=True)
        got = await client.get("#5", include=["discussions", "links"])
        mr = await client.get(kind="mr", iid=2, project=PROJECT, maxAgeMs=3_600_000)
        fresh = await client.get(ref="#6", max_age_ms=0)
        page = await client.list(kind="issue", limit=1)
        everything = [item async for item in client.list_all(limit=1)]
        found = await client.search("#5", sourceTypes=["issue"], limit=3)
    assert camel.status == "succeeded" and snake.dry_run and snake.entities[0].iid == 5
    assert isinstance(got, protocol_read.EntityDetail) and (got.kind, got.iid) == ("issue", 5)
    assert got.discussions is not None and isinstance(got.links, protocol_read.EntityLinks)
    assert mr.local.source == "mirror" and mr.file_changes is None
    assert fresh.local.source == "synced" and isinstance(fresh.sync, protocol.SyncResult)
    assert isinstance(page, protocol_read.ListResult) and len(page.items) == 1 and page.next_cursor
    assert sorted((i.kind, i.iid) for i in everything) == [("issue", 5), ("issue", 6), ("mr", 2)]
    assert isinstance(found, protocol_read.SearchResult) and found.mode == "lexical"
    assert (found.hits[0].kind, found.hits[0].iid, found.hits[0].exact_reference) == ("issue", 5, True)


def test_params_takes_wire_and_python_names_and_rejects_the_rest() -> None:
    a = params(protocol.SyncSurgicalParams, {"issueUrls": ["u"], "dryRun": True})
    b = params(protocol.SyncSurgicalParams, {"issue_urls": ["u"], "dry_run": True})
    assert a == b == protocol.SyncSurgicalParams(issue_urls=["u"], dry_run=True)
    when = params(protocol_read.ListParams, {"updatedAfter": "2025-01-01T00:00:00Z"})
    assert when.updated_after is not None and when.updated_after.year == 2025
    with pytest.raises(TypeError, match="no field 'issueUrl'"):
        params(protocol.SyncSurgicalParams, {"issueUrl": ["u"]})
    with pytest.raises(TypeError, match="given twice"):
        params(protocol.SyncSurgicalParams, {"issueUrls": ["u"], "issue_urls": ["v"]})
    with pytest.raises(msgspec.ValidationError):
        params(protocol_read.ListParams, {"limit": 500})


async def _pid(client: LoreClient) -> int:
    status = await client.status()
    assert status.pid is not None
    return status.pid


async def test_the_client_reconnects_when_the_shared_daemon_restarts(client_env: ClientEnv) -> None:
    sock = client_env.socket_path
    await asyncio.to_thread(ensure_daemon, sock, env=client_env.env)
    async with LoreClient.connect_shared(sock) as client:
        await client.sync_surgical(project=PROJECT, issues=[3])
        before = await client.get("#3")
        first = await _pid(client)

        await asyncio.to_thread(stop_daemon, sock)  # a restart between two calls
        await asyncio.to_thread(ensure_daemon, sock, env=client_env.env)

        again = await client.get("#3")  # the old connection is dead: a new one, same answer
        second = await _pid(client)
        found = await client.search("#3")
    assert first != second == running_pid(sock) and client.reconnects == 1
    assert again.title == before.title and again.local.last_seen_at == before.local.last_seen_at
    assert found.hits[0].iid == 3


async def test_with_start_the_client_brings_a_stopped_daemon_back(client_env: ClientEnv) -> None:
    sock = client_env.socket_path
    async with LoreClient.connect_shared(sock, start=True, env=client_env.env) as client:
        first = await _pid(client)  # started by connect_shared itself
        await asyncio.to_thread(stop_daemon, sock)
        assert running_pid(sock) is None
        page: Any = await client.list(limit=5)
        second = await _pid(client)
    assert first != second and isinstance(page, protocol_read.ListResult)


async def test_a_sync_lost_with_its_connection_is_not_sent_again(client_env: ClientEnv) -> None:
    sock = client_env.socket_path
    await asyncio.to_thread(ensure_daemon, sock, env=client_env.env)
    slow = r"/issues/9$"
    client_env.sim.control.set_latency(3000, slow)
    try:
        async with LoreClient.connect_shared(sock, start=True, env=client_env.env) as client:
            running = asyncio.ensure_future(client.sync_surgical(project=PROJECT, issues=[9]))
            await asyncio.sleep(1.0)
            await asyncio.to_thread(stop_daemon, sock)  # the daemon cancels the run and exits
            with pytest.raises(Exception) as lost:
                await running
            runs = (await client.sync_runs()).runs  # the next call reconnects (start=True)
    finally:
        client_env.sim.control.set_latency(0, slow)
    assert type(lost.value).__name__ in ("RpcError", "ConnectionClosed")
    assert [r.status for r in runs] == ["cancelled"]  # one run, not a second one behind its back
