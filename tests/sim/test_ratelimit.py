"""The authenticated-API throttle: a per-period budget on GitLab's clock (API-NOTES §1.12, §5.13d)."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from lore_daemon.errors import InvalidParamsError
from lore_daemon.sim import SimServer

RATE_HEADERS = {"ratelimit-name", "ratelimit-limit", "ratelimit-observed", "ratelimit-remaining",
                "ratelimit-reset", "ratelimit-resettime"}


def _date_s(resp: httpx.Response) -> float:
    return email.utils.parsedate_to_datetime(resp.headers["date"]).timestamp()


def _window_start(sim: SimServer, period_ms: int = 60_000) -> None:
    """Move the clock just past a window boundary so a test cannot straddle two windows."""
    now = sim.control.clock()["now_ms"]
    sim.control.advance_clock(period_ms - now % period_ms + 500)


def test_off_by_default_no_rate_headers(api: httpx.Client) -> None:
    resp = api.get("/projects/1/issues")
    assert resp.status_code == 200 and not RATE_HEADERS & set(resp.headers)


def test_budget_counts_down_then_429_until_the_window_ends(sim: SimServer, api: httpx.Client) -> None:
    _window_start(sim)
    sim.control.set_option("rate_limit", 5)
    seen = [api.get("/projects/1/issues/1") for _ in range(5)]
    assert [r.status_code for r in seen] == [200] * 5
    assert [int(r.headers["ratelimit-remaining"]) for r in seen] == [4, 3, 2, 1, 0]
    assert [int(r.headers["ratelimit-observed"]) for r in seen] == [1, 2, 3, 4, 5]
    first = seen[0]
    assert first.headers["ratelimit-name"] == "throttle_authenticated_api"
    assert first.headers["ratelimit-limit"] == "5" and "retry-after" not in first.headers
    reset = int(first.headers["ratelimit-reset"])
    assert reset % 60 == 0 and 0 < reset - _date_s(first) <= 60
    assert email.utils.parsedate_to_datetime(first.headers["ratelimit-resettime"]).timestamp() == reset
    refused = api.get("/projects/1/issues/1")
    assert refused.status_code == 429 and refused.text == "Retry later\n"
    assert refused.headers["content-type"].startswith("text/plain")
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60 and abs(_date_s(refused) + retry_after - reset) <= 1  # rest of the window
    assert refused.headers["ratelimit-remaining"] == "0" and refused.headers["ratelimit-observed"] == "6"
    assert api.get("/user").status_code == 429  # one budget for the whole user
    assert httpx.get(f"{sim.base_url}/api/v4/user").status_code == 401  # anonymous: not this throttle
    assert sim.control.stats()["throttle"]["throttled"] == 2
    sim.control.advance_clock(retry_after * 1000)  # the next window: a fresh budget
    again = api.get("/projects/1/issues/1")
    assert again.status_code == 200 and again.headers["ratelimit-remaining"] == "4"
    assert [e["outcome"] for e in sim.control.log()].count("throttled") == 2


def test_a_self_managed_hour_long_period_gives_long_retry_after(sim: SimServer, api: httpx.Client) -> None:
    _window_start(sim, 3_600_000)
    sim.control.set_option("rate_limit_period_s", 3600)
    sim.control.set_option("rate_limit", 7200)  # the self-managed default, 120 per minute
    ok = api.get("/user")
    assert ok.headers["ratelimit-limit"] == "120" and ok.headers["ratelimit-remaining"] == "7199"
    sim.control.set_option("rate_limit", 1)
    api.get("/user")
    refused = api.get("/user")
    reset = int(refused.headers["ratelimit-reset"])
    assert refused.status_code == 429 and reset % 3600 == 0
    assert 1 <= int(refused.headers["retry-after"]) <= 3600


@pytest.mark.parametrize(("mode", "on_200", "on_429"), [("throttled", False, True), ("none", False, False)])
def test_header_modes(sim: SimServer, api: httpx.Client, mode: str, on_200: bool, on_429: bool) -> None:
    _window_start(sim)
    sim.control.set_option("rate_limit_headers", mode)
    sim.control.set_option("rate_limit", 1)
    ok, refused = api.get("/user"), api.get("/user")
    assert ok.status_code == 200 and refused.status_code == 429
    assert bool(RATE_HEADERS & set(ok.headers)) is on_200
    assert bool(RATE_HEADERS & set(refused.headers)) is on_429
    assert ("retry-after" in refused.headers) is on_429  # GitLab.com's edge sends none at all


def test_bad_rate_limit_options_are_refused(sim: SimServer) -> None:
    with pytest.raises(InvalidParamsError, match="at least 1"):
        sim.control.set_option("rate_limit_period_s", 0)
    with pytest.raises(InvalidParamsError, match="must be one of"):
        sim.control.set_option("rate_limit_headers", "some")
    with pytest.raises(InvalidParamsError, match="at least 0"):
        sim.control.set_option("rate_limit", -1)
