"""Every fault kind, observed with a raw httpx client (docs/simulator.md, "Fault rules"; API-NOTES §1.12)."""

from __future__ import annotations

import email.utils
import json
import time

import httpx
import pytest

from lore_daemon.sim import SimServer

ISSUES = r"^/api/v4/projects/1/issues$"


def test_status_sequence_is_consumed_then_expires(sim: SimServer, api: httpx.Client) -> None:
    sim.control.add_fault(ISSUES, statuses=[502, 503, 200])
    first, second, third, fourth = (api.get("/projects/1/issues") for _ in range(4))
    assert (first.status_code, second.status_code, third.status_code, fourth.status_code) == (
        502,
        503,
        200,
        200,
    )
    assert "502 Bad Gateway" in first.text
    assert third.headers["x-total"] == "60"
    assert sim.control.faults()["rules"] == []
    assert [e["fault_id"] is not None for e in sim.control.log()] == [True, True, True, False]


def test_times_repeats_the_last_status(sim: SimServer, api: httpx.Client) -> None:
    sim.control.add_fault(r"/issues/\d+$", statuses=[500], times=3)
    codes = [api.get("/projects/1/issues/2").status_code for _ in range(4)]
    assert codes == [500, 500, 500, 200]
    assert api.get("/projects/1/merge_requests/2").status_code == 200  # route regex did not match


def test_method_filter(sim: SimServer, api: httpx.Client) -> None:
    sim.control.add_fault(ISSUES, method="POST", statuses=[500])
    assert api.get("/projects/1/issues").status_code == 200
    sim.control.add_fault(ISSUES, method="*", statuses=[503])
    assert api.get("/projects/1/issues").status_code == 503


def test_timeout_holds_the_connection_without_answering(sim: SimServer, api: httpx.Client) -> None:
    sim.control.add_fault(ISSUES, kind="timeout", times=1)
    with pytest.raises(httpx.ReadTimeout):
        api.get("/projects/1/issues", timeout=httpx.Timeout(5, read=0.3))
    assert api.get("/projects/1/issues").status_code == 200
    entry = sim.control.log()[0]
    assert entry["status"] is None and entry["fault_id"] is not None


def test_drop_closes_without_a_response(sim: SimServer, api: httpx.Client) -> None:
    sim.control.add_fault(ISSUES, kind="drop", times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        api.get("/projects/1/issues")
    assert api.get("/projects/1/issues").status_code == 200
    assert sim.control.log()[0]["outcome"] == "drop"


def test_truncate_sends_half_the_declared_body(sim: SimServer, api: httpx.Client) -> None:
    sim.control.add_fault(ISSUES, kind="truncate", times=1)
    with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
        api.get("/projects/1/issues")
    with api.stream("GET", "/projects/1/issues") as whole:
        assert whole.status_code == 200 and len(whole.read()) == int(whole.headers["content-length"])


def test_malformed_is_a_200_with_invalid_json(sim: SimServer, api: httpx.Client) -> None:
    sim.control.add_fault(ISSUES, kind="malformed", times=1)
    resp = api.get("/projects/1/issues")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.content)


def test_rate_limit_with_headers(sim: SimServer, api: httpx.Client) -> None:
    sim.control.add_fault(ISSUES, kind="rate_limit", retry_after=2, times=1)
    resp = api.get("/projects/1/issues")
    assert resp.status_code == 429 and resp.text.strip() == "Retry later"
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.headers["retry-after"] == "2"
    assert resp.headers["ratelimit-name"] == "throttle_authenticated_api"
    assert resp.headers["ratelimit-remaining"] == "0"
    reset = int(resp.headers["ratelimit-reset"])
    assert abs(reset - (time.time() + 2)) < 5
    assert email.utils.parsedate_to_datetime(resp.headers["ratelimit-resettime"]).timestamp() == reset
    assert api.get("/projects/1/issues").status_code == 200


def test_rate_limit_fractional_retry_after_and_reset_only(sim: SimServer, api: httpx.Client) -> None:
    sim.control.add_fault(ISSUES, kind="rate_limit", retry_after=0.25, times=1)
    assert api.get("/projects/1/issues").headers["retry-after"] == "0.25"
    sim.control.add_fault(ISSUES, kind="rate_limit", ratelimit_reset=True, times=1)
    resp = api.get("/projects/1/issues")
    assert "retry-after" not in resp.headers and "ratelimit-reset" in resp.headers


def test_rate_limit_storm_without_any_headers(sim: SimServer, api: httpx.Client) -> None:
    """GitLab.com's edge answers 429 with no Retry-After and no RateLimit-* at all."""
    sim.control.add_fault(r"/projects/1/", kind="rate_limit", times=5)
    answers = [api.get(f"/projects/1/issues/{i}") for i in range(1, 7)]
    assert [a.status_code for a in answers] == [429] * 5 + [200]
    for resp in answers[:5]:
        assert resp.text.strip() == "Retry later"
        assert not [h for h in resp.headers if h.startswith("ratelimit") or h == "retry-after"]


def test_trickle_sends_the_real_body_one_byte_at_a_time(sim: SimServer, api: httpx.Client) -> None:
    """Each read gets a byte within interval_ms, so only a deadline on the whole body ends it."""
    sim.control.add_fault(r"^/api/v4/version$", kind="trickle", interval_ms=20, times=1)
    started = time.monotonic()
    resp = api.get("/version", timeout=httpx.Timeout(10, read=0.5))  # never 0.5 s without a byte
    elapsed = time.monotonic() - started
    assert resp.status_code == 200 and resp.json() == api.get("/version").json()
    assert elapsed >= len(resp.content) * 0.02 * 0.8
    assert sim.control.log()[0]["outcome"] == "trickle"


def test_trickle_stops_when_the_client_gives_up(sim: SimServer, api: httpx.Client) -> None:
    sim.control.add_fault(ISSUES, kind="trickle", interval_ms=50, times=1)
    with api.stream("GET", "/projects/1/issues") as resp:
        assert resp.status_code == 200 and int(resp.headers["content-length"]) > 1000
        got = next(resp.iter_raw(1))
        assert got == b"["
    deadline = time.monotonic() + 5
    while sim.control.log()[0]["outcome"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim.control.log()[0]["outcome"] == "client_gone"
    assert sim.control.stats()["in_flight"] == 0


def test_latency_global_and_per_route(sim: SimServer, api: httpx.Client) -> None:
    sim.control.set_latency(150, route=r"/merge_requests")
    api.get("/projects/1/merge_requests")
    api.get("/projects/1/issues")
    slow, fast = sim.control.log()
    assert slow["finished_at"] - slow["started_at"] >= 140
    sim.control.set_latency(120)
    api.get("/projects/1/issues")
    delayed = sim.control.log(since=fast["seq"])[0]
    assert delayed["finished_at"] - delayed["started_at"] >= 110
    sim.control.set_latency(0)
    sim.control.set_latency(0, route=r"/merge_requests")
    assert sim.control.faults()["route_latency"] == {} and sim.control.faults()["global_latency_ms"] == 0


def test_fault_latency_then_pass_through(sim: SimServer, api: httpx.Client) -> None:
    sim.control.add_fault(ISSUES, latency_ms=120, times=1)
    assert api.get("/projects/1/issues").status_code == 200
    entry = sim.control.log()[0]
    assert entry["finished_at"] - entry["started_at"] >= 110


def test_fault_mutation_fires_mid_walk(sim: SimServer, api: httpx.Client) -> None:
    """Fetching page 2 bumps issue 1, so a walk ordered by updated_at sees it move to the end."""
    before = api.get("/projects/1/issues/1").json()["updated_at"]
    sim.control.add_fault(
        ISSUES,
        times=1,
        kind="status",
        mutation={"op": "bump_issue", "project": "group/project", "iid": 1},
    )
    api.get("/projects/1/issues", params={"page": 2})
    after = api.get("/projects/1/issues/1").json()["updated_at"]
    assert after > before
    newest = api.get("/projects/1/issues", params={"order_by": "updated_at", "sort": "desc", "per_page": 1})
    assert newest.json()[0]["iid"] == 1


def test_bad_fault_specs_are_rejected(sim: SimServer) -> None:
    from lore_daemon.errors import InvalidParamsError

    with pytest.raises(InvalidParamsError, match="kind"):
        sim.control.add_fault(ISSUES, kind="explode")
    with pytest.raises(InvalidParamsError, match="regex"):
        sim.control.add_fault("(unclosed")
    with pytest.raises(InvalidParamsError, match="interval_ms"):
        sim.control.add_fault(ISSUES, kind="trickle", interval_ms=0)
