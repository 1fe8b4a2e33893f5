"""Failures are named for what they are: a wrong base_url is not a refused token, a malformed
date from GitLab is a bad response, not an internal error (issue 15, item 10)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from lore_daemon.errors import ConfigError, GitLabAuthError, GitLabBadResponseError, GitLabNotFoundError
from lore_daemon.gitlab import GitLabClient
from lore_daemon.sim import SimConfig, SimServer
from lore_daemon.timeutil import iso_to_ms

from .support import BASE, FAST, TOKEN, Script, html_server, issue, page_response

HTML = "text/html; charset=utf-8"


@pytest.mark.parametrize("suffix", ["/api/v4", "/api/v4/", "/gitlab/api/v4", "/API/V4"])
def test_a_base_url_of_the_api_itself_is_a_config_error(suffix: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GitLabClient(f"https://gitlab.example.com{suffix}", TOKEN)
    err = caught.value
    assert err.code == "CONFIG_INVALID" and err.details["key"] == "gitlab.base_url"
    assert "/api/v4 itself" in err.message
    expected = "https://gitlab.example.com" + ("/gitlab" if suffix.startswith("/gitlab") else "")
    assert err.details["suggested"] == expected and expected in err.suggestion


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (200, b"<!doctype html><html><body>Welcome</body></html>", HTML),  # a web app's catch-all
        (404, b"<html><body>Not Found</body></html>", HTML),  # some other server
        (401, b"<html>Authorization Required</html>", HTML),  # basic auth of a proxy
        (403, b"Forbidden", "text/plain"),
        (404, b'{"error":"404 Not Found"}', "application/json"),  # a GitLab, but no API at this path
        (200, b'{"status": "ok"}', "application/json"),  # JSON, but not a user
    ],
    ids=["html-200", "html-404", "html-401", "text-403", "no-route-404", "other-json"],
)
async def test_a_server_that_is_not_gitlabs_api_is_named_so(
    status: int, body: bytes, content_type: str
) -> None:
    script = Script().on(
        "/api/v4/user", httpx.Response(status, content=body, headers={"content-type": content_type})
    )
    async with GitLabClient(BASE, TOKEN, retry=FAST, transport=script.transport()) as client:
        with pytest.raises(ConfigError) as caught:
            await client.get_user()
    err = caught.value
    assert err.code == "CONFIG_INVALID" and err.details["key"] == "gitlab.base_url"
    assert "does not look like GitLab's API" in err.message and f"HTTP {status}" in err.message
    assert "token" not in err.message.lower() and len(script.requests) == 1  # not retried


async def test_gitlabs_own_refusals_keep_their_codes() -> None:
    script = Script().on("/api/v4/user", httpx.Response(401, json={"message": "401 Unauthorized"}))
    script.on("/api/v4/projects/7/issues/9", httpx.Response(404, json={"message": "404 Issue Not Found"}))
    async with GitLabClient(BASE, TOKEN, retry=FAST, transport=script.transport()) as client:
        with pytest.raises(GitLabAuthError):
            await client.get_user()
        with pytest.raises(GitLabNotFoundError):
            await client.get_issue(7, 9)


@pytest.fixture
def not_gitlab() -> Iterator[str]:
    with html_server() as url:
        yield url


async def test_a_real_server_that_is_not_gitlab(not_gitlab: str) -> None:
    async with GitLabClient(not_gitlab, TOKEN, retry=FAST) as client:
        for call in (client.get_user, lambda: client.get_project("group/project")):
            with pytest.raises(ConfigError, match="does not look like GitLab's API"):
                await call()


async def test_the_simulator_under_a_wrong_path_prefix_is_not_gitlab() -> None:
    with SimServer(SimConfig(seed=1, issues=5, mrs=1)) as sim:
        async with GitLabClient(f"{sim.base_url}/gitlab", sim.token, retry=FAST) as client:
            with pytest.raises(ConfigError, match="does not look like GitLab's API"):
                await client.get_user()  # GitLab's no-route 404 for a route GitLab always has


async def test_a_malformed_updated_at_is_a_bad_response() -> None:
    bad = issue(3, updated_at="yesterday")
    script = Script().on("/api/v4/projects/7/issues/3", httpx.Response(200, json=bad))
    bad_month = issue(2, created_at="2024-13-45T00:00:00Z")
    script.on("/api/v4/projects/7/issues", page_response([issue(1), bad_month]))
    async with GitLabClient(BASE, TOKEN, retry=FAST, transport=script.transport()) as client:
        with pytest.raises(GitLabBadResponseError) as one:
            await client.get_issue(7, 3)
        with pytest.raises(GitLabBadResponseError) as listed:
            async for _ in client.iter_issues(7):
                pass
    assert one.value.code == "GITLAB_BAD_RESPONSE" and "$.updated_at" in one.value.message
    assert "'yesterday'" in one.value.message
    assert "$[1].created_at" in listed.value.message
    assert script.calls("/api/v4/projects/7/issues/3") == 1  # deterministic: not retried


def test_a_malformed_timestamp_anywhere_else_is_a_bad_response_too() -> None:
    with pytest.raises(GitLabBadResponseError) as caught:
        iso_to_ms("not a date")
    assert caught.value.code == "GITLAB_BAD_RESPONSE" and "not a date" in caught.value.message
    assert iso_to_ms("2024-01-01T00:00:00.123456Z") == iso_to_ms("2024-01-01T00:00:00.123Z")
