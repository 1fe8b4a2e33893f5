"""Request lanes: interactive requests go ahead of queued background ones in the shared limit."""

from __future__ import annotations

import asyncio

import pytest

from lore_daemon.gitlab import GitLabClient, RetryPolicy, lane, request_lane
from lore_daemon.gitlab._lanes import PrioritySlots
from lore_daemon.sim import SimConfig, SimServer

FAST = RetryPolicy(max_attempts=3, max_elapsed_s=30.0, base_delay_s=0.01, max_delay_s=0.05, jitter=0.0)


async def test_a_freed_slot_goes_to_the_interactive_waiter_first() -> None:
    slots = PrioritySlots(1)
    order: list[str] = []
    await slots.acquire("background")  # the slot is busy

    async def take(name: str, which: str) -> None:
        await slots.acquire(which)  # type: ignore[arg-type]
        order.append(name)
        await asyncio.sleep(0)
        slots.release()

    waiters = [asyncio.create_task(take(f"bg{i}", "background")) for i in range(3)]
    await asyncio.sleep(0)
    waiters += [asyncio.create_task(take(f"ui{i}", "interactive")) for i in range(2)]
    await asyncio.sleep(0)
    assert slots.waiting("background") == 3 and slots.waiting("interactive") == 2
    slots.release()
    await asyncio.gather(*waiters)
    assert order == ["ui0", "ui1", "bg0", "bg1", "bg2"]  # interactive first, each lane in order
    assert slots.in_use == 0


async def test_a_newcomer_does_not_overtake_the_queue_and_cancelled_waiters_leave_it() -> None:
    slots = PrioritySlots(1)
    await slots.acquire("interactive")
    queued = asyncio.create_task(slots.acquire("background"))
    gone = asyncio.create_task(slots.acquire("background"))
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert slots.waiting("background") == 1
    slots.release()
    await queued  # handed over directly
    late = asyncio.create_task(slots.acquire("background"))
    await asyncio.sleep(0)
    assert not late.done()  # no free slot appeared in between
    slots.release()
    await late
    slots.release()
    assert slots.in_use == 0


async def test_a_slot_handed_to_a_cancelled_waiter_is_not_lost() -> None:
    slots = PrioritySlots(1)
    await slots.acquire("background")
    waiter = asyncio.create_task(slots.acquire("interactive"))
    await asyncio.sleep(0)
    slots.release()  # handed to the waiter...
    waiter.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert slots.in_use == 0


def test_the_lane_is_a_context_variable() -> None:
    assert request_lane.get() == "interactive"
    with lane("background"):
        assert request_lane.get() == "background"
    assert request_lane.get() == "interactive"


async def test_interactive_request_overtakes_a_queue_of_background_requests() -> None:
    """Against the simulator: 2 slots, 40 background requests of 100 ms queued, then one
    interactive request: it is answered after about one request time, not after the queue."""
    with SimServer(SimConfig(seed=1, issues=60, mrs=5)) as sim:
        sim.control.set_latency(100)
        async with GitLabClient(sim.base_url, sim.token, concurrency=2, retry=FAST) as client:
            done: list[str] = []

            async def background(iid: int) -> None:
                with lane("background"):
                    await client.get_issue(1, iid)
                done.append(f"bg{iid}")

            queue = [asyncio.create_task(background(i)) for i in range(1, 41)]
            await asyncio.sleep(0.15)  # the queue is waiting for slots
            await client.get_issue(1, 60)
            done.append("ui")
            await asyncio.gather(*queue)
    # The requests in flight (and the ones started as they finished) come back first, not 40.
    assert done.index("ui") <= 6, done
