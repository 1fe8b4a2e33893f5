"""One rate-limit gate per client: a 429 pauses every request; the budget paces background ones;
interactive requests fail fast rather than wait out a long reset (SPEC §7, API-NOTES §5.13d)."""

from __future__ import annotations

import asyncio
import itertools
import time
from email.utils import formatdate

import httpx
import pytest

from lore_daemon.errors import GitLabRateLimitedError
from lore_daemon.gitlab import GitLabClient, RetryPolicy, lane
from lore_daemon.gitlab._gate import RateGate, read_budget
from lore_daemon.sim import SimConfig, SimServer

from .support import BASE, FAST, TOKEN, Script, WaitRecorder, issue

ISSUE = "/api/v4/projects/7/issues/{}"


def sent_at(script: Script) -> list[tuple[float, str]]:
    return [(r.extensions["sent"], r.url.path) for r in script.requests]


def stamped(script: Script) -> httpx.MockTransport:
    """The script's transport, stamping each request with the monotonic time it was sent."""

    def handle(request: httpx.Request) -> httpx.Response:
        request.extensions["sent"] = time.monotonic()
        return script._handle(request)

    return httpx.MockTransport(handle)


def budget_headers(remaining: int, observed: int, reset_in: int) -> httpx.Headers:
    now = time.time()
    return httpx.Headers({
        "Date": formatdate(now, usegmt=True),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Observed": str(observed),
        "RateLimit-Reset": str(int(now) + reset_in),
    })


def test_read_budget_uses_gitlabs_own_clock() -> None:
    skewed = formatdate(1_700_000_000, usegmt=True)  # GitLab's clock, far from ours
    budget = read_budget(httpx.Headers({"Date": skewed, "RateLimit-Remaining": "3", "RateLimit-Observed": "7",
                                        "RateLimit-Reset": "1700000042"}))
    assert budget is not None and (budget.remaining, budget.observed, budget.reset_in_s) == (3, 7, 42.0)
    assert read_budget({"ratelimit-remaining": "x"}) is None and read_budget({}) is None


def test_gate_paces_only_the_last_share_of_the_window() -> None:
    now = [100.0]
    gate = RateGate(clock=lambda: now[0])
    budget = read_budget(budget_headers(50, 50, 20))
    assert budget is not None and gate.observe(budget) is None and gate.spacing_s == 0
    low = read_budget(budget_headers(10, 90, 20))
    assert low is not None and gate.observe(low) is None
    assert gate.spacing_s == pytest.approx(2.0, abs=0.2)  # 10 left for ~20 s
    assert [gate.pacing_delay() for _ in range(3)] == pytest.approx([0.0, 2.0, 4.0], abs=0.3)
    later = [gate.pacing_delay() for _ in range(12)]
    assert max(later) <= 20.5 and later[-1] == later[-2]  # never paced past the window's reset
    now[0] += 21  # the window reset: nothing paces until a new answer says so
    assert gate.pacing_delay() == 0.0
    spent = read_budget(budget_headers(0, 100, 20))
    assert spent is not None and gate.observe(spent) == pytest.approx(20, abs=1.5)
    assert gate.paused_for() == pytest.approx(20, abs=1.5) and gate.spacing_s == 0


async def test_one_429_pauses_every_request_of_the_client() -> None:
    script = Script().on(
        ISSUE.format(1), httpx.Response(429, text="Retry later", headers={"Retry-After": "1"}),
        httpx.Response(200, json=issue(1)),
    )
    script.fallback = lambda r: httpx.Response(200, json=issue(int(r.url.path.rsplit("/", 1)[1])))
    async with GitLabClient(BASE, TOKEN, concurrency=2, retry=FAST, transport=stamped(script)) as client:
        with WaitRecorder() as rec, lane("background"):
            got = await asyncio.gather(*(client.get_issue(7, i) for i in range(1, 9)))
    assert sorted(g.item.iid for g in got) == list(range(1, 9))
    sends = sent_at(script)
    refused_at = sends[0][0]  # issue 1 went first and got the 429
    after = [t for t, _ in sends[1:] if t > refused_at + 0.05]
    in_flight = len(sends) - 1 - len(after)
    assert in_flight <= 1  # only the request already on the wire went out during the pause
    assert min(after) - refused_at >= 0.95  # everything else waited for the reset
    assert [(w.reason, w.status, w.wait_ms) for w in rec.waits] == [("rate_limit", 429, 1000)]


async def test_interactive_requests_fail_fast_on_a_long_reset_background_ones_would_wait() -> None:
    refused = httpx.Response(429, text="Retry later", headers={"Retry-After": "30"})
    script = Script().on(ISSUE.format(1), refused)
    script.fallback = lambda r: httpx.Response(200, json=issue(2))
    async with GitLabClient(BASE, TOKEN, retry=FAST, transport=script.transport()) as client:
        started = time.monotonic()
        with WaitRecorder() as rec, pytest.raises(GitLabRateLimitedError) as caught:
            await client.get_issue(7, 1)
        err = caught.value
        assert err.code == "GITLAB_RATE_LIMITED" and err.retryable and err.http_status == 429
        assert 29_000 <= (err.retry_after_ms or 0) <= 30_000 and rec.waits == []
        with pytest.raises(GitLabRateLimitedError) as again:  # the gate is closed for everyone now
            await client.get_issue(7, 2)
        assert len(script.requests) == 1  # ...so that one was not even sent
        assert 28_000 <= (again.value.retry_after_ms or 0) <= 30_000
        assert time.monotonic() - started < 5  # failed fast, did not sleep through the reset
        assert client.gate.paused_for() > 25  # a background request would wait it out


async def test_background_requests_wait_out_a_reset_and_report_it_once_per_run() -> None:
    reset = budget_headers(0, 100, 2)  # the budget is spent: GitLab will refuse for ~2 s
    script = Script().on(ISSUE.format(1), httpx.Response(200, json=issue(1), headers=reset))
    script.fallback = lambda r: httpx.Response(200, json=issue(int(r.url.path.rsplit("/", 1)[1])))
    async with GitLabClient(BASE, TOKEN, concurrency=1, retry=FAST, transport=stamped(script)) as client:
        with WaitRecorder() as rec, lane("background"):
            await client.get_issue(7, 1)
            await asyncio.gather(*(client.get_issue(7, i) for i in range(2, 6)))
    sends = sent_at(script)
    assert sends[1][0] - sends[0][0] >= 0.9  # no request before the reset, without a single 429
    assert [(w.reason, w.status) for w in rec.waits] == [("rate_limit", None)]  # one report, not 4
    assert 900 <= rec.waits[0].wait_ms <= 2_100


async def test_a_low_budget_paces_background_requests_but_not_interactive_ones() -> None:
    low = budget_headers(5, 95, 1)  # 5 left for ~1 s: one start every ~0.2 s
    script = Script()
    script.fallback = lambda r: httpx.Response(200, json=issue(1), headers=low)
    async with GitLabClient(BASE, TOKEN, concurrency=4, retry=FAST, transport=stamped(script)) as client:
        await client.get_issue(7, 1)  # learn the budget
        with lane("background"):
            await asyncio.gather(*(client.get_issue(7, i) for i in range(4)))
        background = [t for t, _ in sent_at(script)[1:]]
        script.requests.clear()
        await asyncio.gather(*(client.get_issue(7, i) for i in range(4)))
        interactive = [t for t, _ in sent_at(script)]
    gaps = [b - a for a, b in itertools.pairwise(background)]
    assert min(gaps) >= 0.1  # spaced out
    assert max(interactive) - min(interactive) < 0.1  # not paced: they go at once


async def test_against_the_simulator_a_storm_pauses_everyone_and_all_requests_complete() -> None:
    with SimServer(SimConfig(seed=1, issues=40, mrs=5)) as sim:
        sim.control.add_fault(r"/issues/\d+/discussions$", kind="rate_limit", retry_after=2, times=3)
        policy = RetryPolicy(max_attempts=3, base_delay_s=0.01, max_delay_s=0.05, jitter=0.0)
        async with GitLabClient(sim.base_url, sim.token, concurrency=4, retry=policy) as client:
            with WaitRecorder() as rec, lane("background"):
                found = await asyncio.gather(*(client.list_discussions(1, "issue", i) for i in range(1, 41)))
        log = sim.control.log()
    assert len(found) == 40
    truth = [len(d) for d in found]
    assert sum(truth) > 0
    throttled = [e for e in log if e["status"] == 429]
    assert 1 <= len(throttled) <= 3
    first_429 = min(e["finished_at"] for e in throttled)
    on_the_wire = [e for e in log if first_429 < e["started_at"] < first_429 + 100]
    started_during = [e for e in log if first_429 + 100 <= e["started_at"] < first_429 + 1_900]
    assert len(on_the_wire) <= 3  # sent before the client had read the 429
    assert started_during == []  # after that, nobody started while GitLab's window was closed
    assert [w.status for w in rec.waits if w.reason == "rate_limit"][:1] == [429]


async def test_against_the_simulator_a_small_budget_is_paced_and_completes() -> None:
    """A 20-request-per-3-s budget, 60 background requests: the walk slows down instead of
    hammering GitLab into 429s, and every request completes."""
    with SimServer(SimConfig(seed=1, issues=60, mrs=5)) as sim:
        sim.control.set_option("rate_limit_period_s", 3)
        sim.control.set_option("rate_limit", 20)
        async with GitLabClient(sim.base_url, sim.token, concurrency=4, retry=FAST) as client:
            with lane("background"):
                got = await asyncio.gather(*(client.get_issue(1, i) for i in range(1, 61)))
        stats = sim.control.stats()
    assert sorted(g.item.iid for g in got) == list(range(1, 61))
    assert stats["throttle"]["throttled"] <= 8  # paced: far fewer refusals than the 40 over budget
