"""Client behaviour other than retries and pagination: URLs, redirects, token safety, observers, limits."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from lore_daemon.errors import ConfigError, GitLabError, GitLabNotFoundError, GitLabRequestError, LoreError
from lore_daemon.gitlab import GitLabClient, RequestSent, RetryPolicy, request_observer
from lore_daemon.gitlab import models as m

from .support import BASE, FAST, TOKEN, Script, WaitRecorder, page_response

PROJECT = {"id": 42, "path_with_namespace": "group/sub/proj", "web_url": f"{BASE}/group/sub/proj"}


def client_for(script: Script, base: str = BASE, **kw: object) -> GitLabClient:
    return GitLabClient(base, TOKEN, retry=FAST, transport=script.transport(), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("https://gitlab.example.com/", "https://gitlab.example.com"),
        ("https://GitLab.Example.com/gitlab/", "https://gitlab.example.com/gitlab"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_base_url_is_normalized(given: str, normalized: str) -> None:
    assert GitLabClient(given, TOKEN).base_url == normalized


@pytest.mark.parametrize(
    "bad", ["gitlab.example.com", "ftp://gitlab.example.com", "https://user:pw@h.example"]
)
def test_bad_base_url_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GitLabClient(bad, TOKEN)
    assert caught.value.code == "CONFIG_INVALID" and caught.value.details["key"] == "gitlab.base_url"
    assert "pw" not in str(caught.value)


async def test_project_by_path_is_url_encoded_under_the_base_path() -> None:
    script = Script().on("/gitlab/api/v4/projects/group%2Fsub%2Fproj", httpx.Response(200, json=PROJECT))
    async with client_for(script, "https://gitlab.example.com/gitlab/") as client:
        project = await client.get_project("group/sub/proj")
    assert project.id == 42
    sent = script.requests[0]
    assert sent.url.raw_path == b"/gitlab/api/v4/projects/group%2Fsub%2Fproj"
    assert sent.headers["PRIVATE-TOKEN"] == TOKEN


async def test_project_by_numeric_id() -> None:
    script = Script().on("/api/v4/projects/42", httpx.Response(200, json=PROJECT))
    async with client_for(script) as client:
        assert (await client.get_project(42)).path_with_namespace == "group/sub/proj"


async def test_moved_project_301_is_followed_on_the_same_gitlab() -> None:
    moved = httpx.Response(301, headers={"Location": f"{BASE}/api/v4/projects/42"}, text="moved")
    script = (
        Script()
        .on("/api/v4/projects/old%2Fname", moved)
        .on("/api/v4/projects/42", httpx.Response(200, json=PROJECT))
    )
    async with client_for(script) as client:
        with WaitRecorder() as rec:
            project = await client.get_project("old/name")
    assert project.id == 42 and rec.waits == [] and len(script.requests) == 2


@pytest.mark.parametrize(
    "location",
    [
        "https://evil.example.com/api/v4/projects/42",
        "http://gitlab.example.com/api/v4/projects/42",
        "https://gitlab.example.com:444/api/v4/projects/42",
    ],
)
async def test_redirect_off_the_configured_gitlab_is_refused(location: str) -> None:
    script = Script(fallback=lambda r: httpx.Response(200, json=PROJECT))
    script.on("/api/v4/projects/old%2Fname", httpx.Response(301, headers={"Location": location}))
    async with client_for(script) as client:
        with pytest.raises(GitLabRequestError) as caught:
            await client.get_project("old/name")
    assert len(script.requests) == 1  # the token never went anywhere else
    assert caught.value.http_status == 301 and caught.value.code == "GITLAB_REQUEST_FAILED"


async def test_redirect_leaving_the_base_path_is_refused() -> None:
    script = Script(fallback=lambda r: httpx.Response(200, json=PROJECT))
    script.on(
        "/gitlab/api/v4/projects/a%2Fb",
        httpx.Response(302, headers={"Location": "https://gitlab.example.com/other/api/v4/projects/42"}),
    )
    async with client_for(script, "https://gitlab.example.com/gitlab") as client:
        with pytest.raises(GitLabRequestError):
            await client.get_project("a/b")
    assert len(script.requests) == 1


async def test_fetched_raw_is_the_exact_item_bytes() -> None:
    single = b'{"id": 5, "iid": 2,  "project_id": 7, "title": "t\\u00e9", "state": "opened", "zz": [1, 2],\n'
    single += (
        b'"created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-01T00:00:00.000Z", "web_url": "u"}'
    )
    page = b"[" + single + b" ,  " + single.replace(b'"iid": 2', b'"iid": 3') + b"]"
    script = Script().on("/api/v4/projects/7/issues/2", httpx.Response(200, content=single))
    script.on("/api/v4/projects/7/issues", httpx.Response(200, content=page, headers={"X-Next-Page": ""}))
    async with client_for(script) as client:
        one = await client.get_issue(7, 2)
        pages = [p async for p in client.iter_issues(7)]
    assert one.raw == single and one.item.title == "té"
    assert [f.raw for f in pages[0]] == [single, single.replace(b'"iid": 2', b'"iid": 3')]
    assert json.loads(pages[0][1].raw)["zz"] == [1, 2]  # unknown fields survive in the raw bytes


async def test_dependent_endpoints_decode_their_types() -> None:
    user = {"id": 1, "username": "root"}
    event = {"id": 9, "user": user, "created_at": "2024-01-01T00:00:00.000Z", "resource_type": "MergeRequest"}
    script = Script()
    mr = "/api/v4/projects/7/merge_requests/3"
    script.on(
        mr,
        httpx.Response(
            200,
            json={
                **PROJECT,
                "iid": 3,
                "project_id": 7,
                "title": "x",
                "state": "merged",
                "created_at": "2024-01-01T00:00:00.000Z",
                "updated_at": "2024-01-02T00:00:00.000Z",
            },
        ),
    )
    script.on(f"{mr}/resource_state_events", page_response([{**event, "state": "merged"}]))
    script.on(f"{mr}/resource_label_events", page_response([{**event, "action": "add", "label": None}]))
    script.on(
        f"{mr}/resource_milestone_events", page_response([{**event, "action": "remove", "milestone": None}])
    )
    internal = {"id": 1000005, "iid": 5, "project_id": 7, "title": "an issue", "state": "opened"}
    external = [
        {"title": "External Issue PROJ-12", "id": "PROJ-12"},
        {"title": "External Issue 88", "id": "88"},  # a numeric tracker: digits, still a string
    ]
    script.on(f"{mr}/closes_issues", page_response([internal, *external]))
    script.on(f"{mr}/diffs", page_response([{"old_path": "a", "new_path": "b", "renamed_file": True}]))
    script.on("/api/v4/version", httpx.Response(200, json={"version": "17.5.1", "revision": "abc"}))
    async with client_for(script) as client:
        assert (await client.get_merge_request(7, 3)).item.state == "merged"
        states = await client.list_resource_events(7, "mr", 3, "state")
        labels = await client.list_resource_events(7, "mr", 3, "label")
        milestones = await client.list_resource_events(7, "mr", 3, "milestone")
        closes = await client.list_closes_issues(7, 3)
        diffs = await client.list_mr_diffs(7, 3)
        version = await client.get_version()
    assert isinstance(states[0], m.StateEvent) and states[0].state == "merged"
    assert isinstance(labels[0], m.LabelEvent) and labels[0].label is None
    assert isinstance(milestones[0], m.MilestoneEvent) and milestones[0].action == "remove"
    assert [(i.id, i.iid) for i in closes.internal] == [(1000005, 5)]  # decoded item by item
    assert [(e.id, e.title) for e in closes.external] == [(x["id"], x["title"]) for x in external]
    assert diffs[0].renamed_file and version.version == "17.5.1"


async def test_token_never_appears_in_repr_or_errors() -> None:
    echo = {"message": f"401 Unauthorized: bad token {TOKEN}"}
    script = Script().on("/api/v4/user", httpx.Response(401, json=echo))
    script.on("/api/v4/version", httpx.ReadTimeout(f"timed out sending {TOKEN}"))
    script.on("/api/v4/projects/1", httpx.Response(200, content=f"[{TOKEN}".encode()))
    script.on(
        "/api/v4/projects/2", httpx.Response(301, headers={"Location": f"https://evil.example/{TOKEN}"})
    )
    script.on("/api/v4/projects/3", httpx.Response(502, text=f"upstream rejected PRIVATE-TOKEN {TOKEN}"))
    evil_link = f'<https://evil.example/{TOKEN}?page=2>; rel="next"'
    script.on(
        "/api/v4/projects/4/merge_requests/1/diffs",
        page_response([{"old_path": "a", "new_path": "a"}], {"Link": evil_link}),
    )
    errors: list[LoreError] = []
    async with client_for(script) as client:
        assert TOKEN not in repr(client) and TOKEN not in str(client)
        for call in (
            client.get_user(),
            client.get_version(),
            client.get_project(1),
            client.get_project(2),
            client.get_project(3),
        ):
            with pytest.raises(GitLabError) as caught:
                await call
            errors.append(caught.value)
    assert {e.code for e in errors} == {
        "GITLAB_AUTH_FAILED",
        "GITLAB_UNAVAILABLE",
        "GITLAB_BAD_RESPONSE",
        "GITLAB_REQUEST_FAILED",
    }
    for err in errors:
        for text in (str(err), repr(err), json.dumps(err.details), err.message, err.suggestion):
            assert TOKEN not in text
        assert err.__cause__ is None  # no httpx exception (which holds the request headers) chained
    assert "[REDACTED]" in errors[0].message


async def test_observers_see_every_request_and_wait_in_their_own_task_only() -> None:
    script = Script().on(
        "/api/v4/user", httpx.Response(503, text="down"), httpx.Response(200, json={"id": 1, "username": "u"})
    )
    script.on("/api/v4/version", httpx.Response(200, json={"version": "1"}))
    sent: list[RequestSent] = []

    async def observed() -> list[str]:
        request_observer.set(sent.append)
        with WaitRecorder() as rec:
            await client.get_user()
        return [w.reason for w in rec.waits]

    async def unobserved() -> None:
        await client.get_version()

    async with client_for(script) as client:
        reasons, _ = await asyncio.gather(asyncio.create_task(observed()), asyncio.create_task(unobserved()))
    assert reasons == ["server_error"]
    assert [(s.method, s.path, s.attempt) for s in sent] == [("GET", "/user", 1), ("GET", "/user", 2)]


async def test_broken_observer_does_not_break_the_request() -> None:
    script = Script().on("/api/v4/version", httpx.Response(200, json={"version": "1"}))

    def explode(_: RequestSent) -> None:
        raise RuntimeError("observer bug")

    async with client_for(script) as client:
        token = request_observer.set(explode)
        try:
            assert (await client.get_version()).version == "1"
        finally:
            request_observer.reset(token)


async def test_concurrency_limit_bounds_in_flight_requests() -> None:
    in_flight = 0
    peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, json={"version": "1"})

    async with GitLabClient(BASE, TOKEN, concurrency=3, transport=httpx.MockTransport(slow)) as client:
        await asyncio.gather(*(client.get_version() for _ in range(20)))
    assert peak == 3


async def test_retry_waits_do_not_hold_a_concurrency_slot() -> None:
    order: list[str] = []
    first_user_call = True

    def serve(request: httpx.Request) -> httpx.Response:
        nonlocal first_user_call
        order.append(request.url.path)
        if request.url.path == "/api/v4/user" and first_user_call:
            first_user_call = False
            return httpx.Response(502, text="bad gateway")
        return httpx.Response(200, json={"id": 1, "username": "u", "version": "1"})

    policy = RetryPolicy(max_attempts=3, base_delay_s=0.2, jitter=0.0)
    async with GitLabClient(
        BASE, TOKEN, concurrency=1, retry=policy, transport=httpx.MockTransport(serve)
    ) as c:
        user_task = asyncio.create_task(c.get_user())
        await asyncio.sleep(0)  # let the first /user attempt take the only slot and fail
        while not order:
            await asyncio.sleep(0.001)
        await c.get_version()  # must get the slot while /user sleeps its 0.2 s backoff
        await user_task
    assert order == ["/api/v4/user", "/api/v4/version", "/api/v4/user"]


async def test_not_found_message_names_method_and_path() -> None:
    script = Script().on(
        "/api/v4/projects/7/merge_requests/99", httpx.Response(404, json={"message": "404 Not found"})
    )
    async with client_for(script) as client:
        with pytest.raises(GitLabNotFoundError) as caught:
            await client.get_merge_request(7, 99)
    assert (
        str(caught.value)
        == "GITLAB_NOT_FOUND: GET /projects/7/merge_requests/99 failed with HTTP 404: 404 Not found"
    )
