"""Bounded waits: a deadline per request covers the whole answer, body included (a server that
trickles a byte every few hundred ms never trips httpx's per-read timeout)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from lore_daemon.errors import GitLabUnavailableError
from lore_daemon.gitlab import GitLabClient, RetryPolicy
from lore_daemon.sim import SimConfig, SimServer

from .support import BASE, TOKEN, Script, WaitRecorder


class Trickle(httpx.AsyncByteStream):
    """A body that arrives one byte every ``interval`` seconds."""

    def __init__(self, body: bytes, interval: float) -> None:
        self.body, self.interval = body, interval

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for k in range(len(self.body)):
            await asyncio.sleep(self.interval)
            yield self.body[k : k + 1]


async def test_a_trickling_body_is_cut_off_at_the_deadline_and_retried() -> None:
    body = b'{"id": 1, "username": "root", "name": "' + b"x" * 200 + b'"}'
    script = Script().on("/api/v4/user", lambda r: httpx.Response(200, stream=Trickle(body, 0.05)))
    policy = RetryPolicy(max_attempts=5, max_elapsed_s=1.0, base_delay_s=0.05, max_delay_s=0.05, jitter=0.0)
    async with GitLabClient(BASE, TOKEN, retry=policy, timeout=0.4, transport=script.transport()) as client:
        started = time.monotonic()
        with WaitRecorder() as rec, pytest.raises(GitLabUnavailableError) as caught:
            await client.get_user()
        took = time.monotonic() - started
    err = caught.value
    assert err.code == "GITLAB_UNAVAILABLE" and err.retryable and err.details["reason"] == "timeout"
    assert "no complete answer within" in err.message
    assert len(script.requests) >= 2 and {w.reason for w in rec.waits} == {"timeout"}
    assert took < 1.0 + 0.5  # the deadline (1 s of wire time and backoff) bounds the whole request


async def test_against_the_simulator_a_trickle_ends_within_the_deadline() -> None:
    with SimServer(SimConfig(seed=1, issues=20, mrs=3)) as sim:
        sim.control.add_fault(r"/projects/1/issues$", kind="trickle", interval_ms=100)
        policy = RetryPolicy(max_elapsed_s=2.0, base_delay_s=0.05, max_delay_s=0.1, jitter=0.0)
        async with GitLabClient(sim.base_url, sim.token, retry=policy, timeout=0.8) as client:
            started = time.monotonic()
            with pytest.raises(GitLabUnavailableError) as caught:
                async for _ in client.iter_issues(1):
                    pass
            took = time.monotonic() - started
        deadline = 2.0
        assert took < deadline + 1.0, f"a trickling answer held the request for {took:.1f} s"
        assert caught.value.retryable and caught.value.details["attempts"] >= 2
        time.sleep(0.2)  # let the simulator notice the closed connections
        outcomes = {e["outcome"] for e in sim.control.log()}
        assert outcomes <= {"client_gone", "trickle"} and "client_gone" in outcomes
        sim.control.clear_faults()
        async with GitLabClient(sim.base_url, sim.token, retry=policy, timeout=0.8) as client:
            assert sum([len(p) async for p in client.iter_issues(1)]) == 20  # healthy again


async def test_a_slow_but_steady_answer_within_the_deadline_is_fine() -> None:
    body = b'{"id": 1, "username": "root"}'
    script = Script().on("/api/v4/user", lambda r: httpx.Response(200, stream=Trickle(body, 0.005)))
    async with GitLabClient(BASE, TOKEN, timeout=2.0, transport=script.transport()) as client:
        assert (await client.get_user()).username == "root"
