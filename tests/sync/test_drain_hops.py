"""The dependent writer's hops: arrivals are topped up to a useful group before each write."""

from __future__ import annotations

import asyncio
from typing import Any

from lore_daemon.sync import drain_phase
from lore_daemon.tuning import Tuning


def _arrival(n: int) -> Any:
    return (n, None)  # (work, fetched) stand-ins: _gather_hop only moves them around


async def test_a_hop_waits_for_more_parents_while_fetches_are_in_flight() -> None:
    tuning = Tuning(hop_parents=5, hop_gather_s=5.0)  # generous wait: the hop fills long before
    arrived: asyncio.Queue[Any] = asyncio.Queue()
    fetching = asyncio.create_task(asyncio.sleep(10))
    in_flight = {fetching}

    async def trickle() -> None:
        for n in range(8):
            arrived.put_nowait(_arrival(n))
            await asyncio.sleep(0.01)

    feeder = asyncio.create_task(trickle())
    hop = await drain_phase._gather_hop(arrived, in_flight, tuning)
    assert [n for n, _ in hop] == [0, 1, 2, 3, 4]  # topped up to hop_parents, in arrival order
    await feeder
    fetching.cancel()
    await asyncio.gather(fetching, return_exceptions=True)
    in_flight.clear()  # the fetches are over: the rest goes in one last hop, without waiting
    assert [n for n, _ in await drain_phase._gather_hop(arrived, in_flight, tuning)] == [5, 6, 7]


async def test_a_hop_does_not_wait_when_nothing_else_is_coming() -> None:
    tuning = Tuning(hop_parents=50, hop_gather_s=30.0)  # would hang the test if it waited
    arrived: asyncio.Queue[Any] = asyncio.Queue()
    for n in range(3):
        arrived.put_nowait(_arrival(n))
    hop = await asyncio.wait_for(drain_phase._gather_hop(arrived, set(), tuning), 5)
    assert [n for n, _ in hop] == [0, 1, 2]


async def test_a_hop_stops_waiting_at_its_deadline() -> None:
    tuning = Tuning(hop_parents=50, hop_gather_s=0.05)
    arrived: asyncio.Queue[Any] = asyncio.Queue()
    fetching = asyncio.create_task(asyncio.sleep(10))  # in flight, but never delivers
    arrived.put_nowait(_arrival(0))
    hop = await asyncio.wait_for(drain_phase._gather_hop(arrived, {fetching}, tuning), 5)
    assert [n for n, _ in hop] == [0]
    arrived.put_nowait(_arrival(1))  # nothing was lost by the timed-out wait: the queue still works
    assert [n for n, _ in await drain_phase._gather_hop(arrived, set(), tuning)] == [1]
    fetching.cancel()
