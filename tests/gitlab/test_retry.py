"""Retry policy: every rule of docs/gitlab-client.md ("Retry policy"), first as pure functions,
then through the client."""

from __future__ import annotations

import random
import socket
import time
from email.utils import formatdate

import httpx
import pytest

from lore_daemon.errors import (
    GitLabAuthError,
    GitLabBadResponseError,
    GitLabForbiddenError,
    GitLabNotFoundError,
    GitLabRateLimitedError,
    GitLabRequestError,
    GitLabUnavailableError,
)
from lore_daemon.gitlab import GitLabClient, RetryPolicy
from lore_daemon.gitlab._retry import parse_ratelimit_reset, parse_retry_after, rate_limit_wait_s

from .support import BASE, FAST, TOKEN, Script, WaitRecorder, issue, page_response

USER = {"id": 1, "username": "root"}
USER_PATH = "/api/v4/user"


def client_for(script: Script, policy: RetryPolicy = FAST, **kw: object) -> GitLabClient:
    return GitLabClient(BASE, TOKEN, retry=policy, transport=script.transport(), **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ pure rules


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("0", 0.0),
        ("0.25", 0.25),
        ("-5", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
    ],
)
def test_retry_after_delta_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now_epoch_s=1_000_000.0) == expected


def test_retry_after_http_date_is_relative_to_now() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now) == pytest.approx(30.0)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now) == 0.0


def test_ratelimit_reset_is_unix_time() -> None:
    assert parse_ratelimit_reset("1700000042", 1_700_000_000.0) == pytest.approx(42.0)
    assert parse_ratelimit_reset("1600000000", 1_700_000_000.0) == 0.0
    assert parse_ratelimit_reset("never", 1.0) is None


def test_retry_after_wins_over_ratelimit_reset() -> None:
    headers = {"retry-after": "7", "ratelimit-reset": "1700000100"}
    assert rate_limit_wait_s(headers, 1_700_000_000.0) == 7.0
    assert rate_limit_wait_s({"ratelimit-reset": "1700000100"}, 1_700_000_000.0) == pytest.approx(100.0)
    assert rate_limit_wait_s({}, 1_700_000_000.0) is None


def test_backoff_is_exponential_capped_and_jittered_within_bounds() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=4.0, jitter=0.0)
    assert [policy.backoff_s(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    jittered = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0, jitter=0.5)
    rng = random.Random(3)
    samples = [jittered.backoff_s(3, rng) for _ in range(200)]
    assert all(2.0 <= s <= 4.0 for s in samples)
    assert len(set(samples)) > 100  # actually jittered


@pytest.mark.parametrize("bad", [{"max_attempts": 0}, {"jitter": 1.5}, {"base_delay_s": -1.0}])
def test_policy_rejects_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**bad)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ through the client


async def test_429_waits_retry_after_seconds() -> None:
    script = Script().on(
        USER_PATH,
        httpx.Response(429, text="Retry later", headers={"Retry-After": "1"}),
        httpx.Response(200, json=USER),
    )
    async with client_for(script) as client:
        with WaitRecorder() as rec:
            user = await client.get_user()
    assert user.username == "root"
    assert script.calls(USER_PATH) == 2
    assert [(w.reason, w.status, w.wait_ms, w.attempt, w.path) for w in rec.waits] == [
        ("rate_limit", 429, 1000, 1, "/user")
    ]


async def test_429_with_only_ratelimit_reset_waits_until_reset() -> None:
    reset = int(time.time()) + 2
    script = Script().on(
        USER_PATH,
        httpx.Response(429, text="Retry later", headers={"RateLimit-Reset": str(reset)}),
        httpx.Response(200, json=USER),
    )
    async with client_for(script) as client:
        with WaitRecorder() as rec:
            await client.get_user()
    assert len(rec.waits) == 1 and rec.waits[0].reason == "rate_limit"
    assert 900 <= rec.waits[0].wait_ms <= 2000  # until the reset second, not the (1 ms) backoff


async def test_429_without_headers_backs_off_exponentially() -> None:
    script = Script().on(
        USER_PATH,
        httpx.Response(429, text="Retry later"),
        httpx.Response(429, text="Retry later"),
        httpx.Response(429, text="Retry later"),
        httpx.Response(200, json=USER),
    )
    async with client_for(script) as client:
        with WaitRecorder() as rec:
            await client.get_user()
    assert [w.wait_ms for w in rec.waits] == [int(FAST.backoff_s(n) * 1000) for n in (1, 2, 3)]
    assert [w.attempt for w in rec.waits] == [1, 2, 3]


async def test_429_asking_beyond_the_elapsed_budget_fails_at_once_with_retry_after() -> None:
    policy = RetryPolicy(max_attempts=6, max_elapsed_s=5.0, base_delay_s=0.001, jitter=0.0)
    script = Script().on(USER_PATH, httpx.Response(429, text="Retry later", headers={"Retry-After": "3600"}))
    async with client_for(script, policy) as client:
        with WaitRecorder() as rec, pytest.raises(GitLabRateLimitedError) as caught:
            await client.get_user()
    assert rec.waits == [] and script.calls(USER_PATH) == 1
    assert caught.value.code == "GITLAB_RATE_LIMITED" and caught.value.http_status == 429
    assert caught.value.retry_after_ms == 3_600_000


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        (httpx.Response(502, text="<html>Bad Gateway</html>"), "server_error"),
        (httpx.Response(503, json={"message": "503 Service Unavailable"}), "server_error"),
        (httpx.ReadTimeout("timed out"), "timeout"),
        (httpx.ConnectTimeout("connect timed out"), "timeout"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), "connection"),
        (httpx.ConnectError("[Errno 111] Connection refused"), "connection"),
        (httpx.Response(200, content=b'{"id": 1, "usern'), "bad_body"),
        (httpx.Response(200, content=b'{"id": 1, "username": "ro<!-- upstream reset -->',
                        headers={"content-type": "application/json"}), "bad_body"),
    ],
    ids=["502", "503", "read-timeout", "connect-timeout", "dropped", "refused", "truncated", "malformed"],
)
async def test_transient_failure_then_success(first: httpx.Response | Exception, reason: str) -> None:
    script = Script().on(USER_PATH, first, httpx.Response(200, json=USER))
    async with client_for(script) as client:
        with WaitRecorder() as rec:
            user = await client.get_user()
    assert user.id == 1 and script.calls(USER_PATH) == 2
    assert [w.reason for w in rec.waits] == [reason]


@pytest.mark.parametrize(
    ("status", "body", "error_type", "code"),
    [
        (401, {"message": "401 Unauthorized"}, GitLabAuthError, "GITLAB_AUTH_FAILED"),
        (403, {"message": "403 Forbidden"}, GitLabForbiddenError, "GITLAB_FORBIDDEN"),
        (404, {"message": "404 Issue Not Found"}, GitLabNotFoundError, "GITLAB_NOT_FOUND"),
        (400, {"error": "order_by does not have a valid value"}, GitLabRequestError, "GITLAB_REQUEST_FAILED"),
        (409, {"message": "409 Conflict: Resource lock"}, GitLabRequestError, "GITLAB_REQUEST_FAILED"),
    ],
)
async def test_client_errors_fail_at_once(
    status: int, body: dict[str, str], error_type: type, code: str
) -> None:
    path = "/api/v4/projects/7/issues/3"
    script = Script().on(path, httpx.Response(status, json=body))
    async with client_for(script) as client:
        with WaitRecorder() as rec, pytest.raises(error_type) as caught:
            await client.get_issue(7, 3)
    assert script.calls(path) == 1 and rec.waits == []
    err = caught.value
    assert err.code == code and err.http_status == status and not err.retryable
    assert "GET /projects/7/issues/3" in err.message
    assert next(iter(body.values())) in err.message  # GitLab's own words are quoted


async def test_attempts_cap_ends_in_unavailable_with_status() -> None:
    script = Script().on(USER_PATH, httpx.Response(502, text="Bad Gateway"))
    policy = RetryPolicy(max_attempts=3, max_elapsed_s=30.0, base_delay_s=0.001, jitter=0.0)
    async with client_for(script, policy) as client:
        with WaitRecorder() as rec, pytest.raises(GitLabUnavailableError) as caught:
            await client.get_user()
    assert script.calls(USER_PATH) == 3 and len(rec.waits) == 2
    assert caught.value.code == "GITLAB_UNAVAILABLE" and caught.value.http_status == 502
    assert caught.value.details["attempts"] == 3 and "after 3 attempts" in caught.value.message


async def test_elapsed_cap_stops_before_attempts_cap() -> None:
    # Waits would be 0.1, 0.2, 0.4 s: the third would cross 0.5 s, so the request gives up after 3 tries.
    policy = RetryPolicy(max_attempts=100, max_elapsed_s=0.5, base_delay_s=0.1, max_delay_s=10.0, jitter=0.0)
    script = Script().on(USER_PATH, httpx.ReadTimeout("timed out"))
    async with client_for(script, policy) as client:
        with WaitRecorder() as rec, pytest.raises(GitLabUnavailableError) as caught:
            await client.get_user()
    assert script.calls(USER_PATH) == 3
    assert [w.wait_ms for w in rec.waits] == [100, 200]
    assert caught.value.http_status is None and caught.value.details["reason"] == "timeout"


async def test_undecodable_body_exhausted_is_bad_response() -> None:
    policy = RetryPolicy(max_attempts=2, base_delay_s=0.001, jitter=0.0)
    script = Script().on("/api/v4/projects/7/issues", httpx.Response(200, content=b'[{"id": 1, "ii'))
    async with client_for(script, policy) as client:
        with pytest.raises(GitLabBadResponseError) as caught:
            async for _ in client.iter_issues(7):
                pass
    assert caught.value.code == "GITLAB_BAD_RESPONSE" and script.calls("/api/v4/projects/7/issues") == 2


async def test_wrong_shape_is_not_retried() -> None:
    script = Script().on("/api/v4/projects/7/issues/1", httpx.Response(200, json={"id": "not-a-number"}))
    async with client_for(script) as client:
        with pytest.raises(GitLabBadResponseError):
            await client.get_issue(7, 1)
    assert script.calls("/api/v4/projects/7/issues/1") == 1


async def test_real_connection_refused_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = RetryPolicy(max_attempts=2, base_delay_s=0.001, jitter=0.0)
    async with GitLabClient(f"http://127.0.0.1:{port}", TOKEN, retry=policy) as client:
        with WaitRecorder() as rec, pytest.raises(GitLabUnavailableError) as caught:
            await client.get_user()
    assert [w.reason for w in rec.waits] == ["connection"]
    assert caught.value.code == "GITLAB_UNAVAILABLE" and caught.value.retryable


async def test_list_page_retry_keeps_page_position() -> None:
    path = "/api/v4/projects/7/issues"
    pages = {1: [issue(1), issue(2)], 2: [issue(3)]}
    failed_once: set[int] = set()

    def serve(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))  # page 1 is asked for by cursor first
        if page == 2 and page not in failed_once:
            failed_once.add(page)
            return httpx.Response(500, json={"message": "500 Internal Server Error"})
        return page_response(pages[page], {"X-Next-Page": "2" if page == 1 else ""})

    script = Script().on(path, serve)
    async with client_for(script) as client:
        iids = [f.item.iid async for page in client.iter_issues(7) for f in page]
    assert iids == [1, 2, 3]  # GitLab answered the cursor request with offset pages: followed as such
    assert [r.url.params.get("page") for r in script.requests] == [None, "2", "2"]
