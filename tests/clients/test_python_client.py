"""LoreClient against a real daemon subprocess: typed results, per-request progress routing,
and cancellation that the daemon records in its ledger."""

from __future__ import annotations

import asyncio

import pytest

from lore_client.client import LoreClient
from lore_client.rpc import RpcError
from lore_daemon import protocol
from tests.support.wait import wait_until_async

from .conftest import PROJECT, ClientEnv


async def test_progress_is_routed_to_the_request_that_caused_it(client_env: ClientEnv) -> None:
    seen: dict[str, list[protocol.ProgressNotification]] = {"a": [], "b": []}
    async with LoreClient.connect(env=client_env.env) as client:
        a, b = await asyncio.gather(
            client.sync_surgical(project=PROJECT, issues=[7], on_progress=seen["a"].append),
            client.sync_surgical(project=PROJECT, mrs=[3], on_progress=seen["b"].append),
        )
    assert isinstance(a, protocol.SyncResult) and a.status == "succeeded"
    assert b.status == "succeeded"
    assert {n.run_id for n in seen["a"]} == {a.run_id}
    assert {n.run_id for n in seen["b"]} == {b.run_id}
    phases = [n.phase for n in seen["a"] if n.event == "begin"]
    assert phases == ["preflight", "ingest", "dependents", "docs", "embed"]


async def test_errors_arrive_typed(client_env: ClientEnv) -> None:
    async with LoreClient.connect(env=client_env.env) as client:
        with pytest.raises(RpcError) as info:
            await client.sync_surgical(project=PROJECT, issue_urls=["https://elsewhere.example/g/p/-/issues/1"])
    assert info.value.code == -32602
    assert info.value.robot_code == "TARGET_HOST_MISMATCH"


async def test_cancelling_the_call_cancels_the_run(client_env: ClientEnv) -> None:
    client_env.sim.control.set_latency(400, route=r"/discussions")
    try:
        async with LoreClient.connect(env=client_env.env) as client:
            began = asyncio.Event()

            def on_progress(note: protocol.ProgressNotification) -> None:
                if note.phase == "dependents":
                    began.set()

            task = asyncio.ensure_future(
                client.sync_surgical(project=PROJECT, issues=[8, 9], on_progress=on_progress)
            )
            await asyncio.wait_for(began.wait(), 30)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            async def finished() -> bool:
                runs = (await client.sync_runs(limit=1)).runs
                return bool(runs) and runs[0].status != "running"

            await wait_until_async(finished, timeout=5, what="the cancelled run to be recorded")
            assert (await client.sync_runs(limit=1)).runs[0].status == "cancelled"
            status = await client.status()
            assert status.locks == []
    finally:
        client_env.sim.control.set_latency(0, route=r"/discussions")
