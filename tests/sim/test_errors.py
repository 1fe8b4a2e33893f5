"""Auth, error bodies, routing and the moved-project redirect (API-NOTES §1.2, §1.3, §1.11)."""

from __future__ import annotations

import httpx
import pytest

from lore_daemon.errors import InvalidParamsError
from lore_daemon.sim import SimServer


def test_missing_or_wrong_token_is_401(raw: httpx.Client) -> None:
    for headers in ({}, {"PRIVATE-TOKEN": "wrong"}, {"Authorization": "Bearer wrong"}):
        resp = raw.get("/api/v4/projects/1/issues", headers=headers)
        assert resp.status_code == 401
        assert resp.json() == {"message": "401 Unauthorized"}
        assert resp.headers["content-type"] == "application/json"


def test_bearer_and_query_tokens_work(sim: SimServer, raw: httpx.Client) -> None:
    assert (
        raw.get("/api/v4/user", headers={"Authorization": f"Bearer {sim.token}"}).json()["username"]
        == "sim-bot"
    )
    assert raw.get("/api/v4/user", params={"private_token": sim.token}).status_code == 200


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/projects/999", "404 Project Not Found"),
        ("/projects/nope%2Fmissing/issues", "404 Project Not Found"),
        ("/projects/1/issues/9999", "404 Issue Not Found"),
        ("/projects/1/issues/9999/discussions", "404 Issue Not Found"),
        ("/projects/1/merge_requests/9999", "404 Merge Request Not Found"),
        ("/projects/1/merge_requests/9999/diffs", "404 Merge Request Not Found"),
        (
            "/projects/1/issues/7/discussions/0000000000000000000000000000000000000000",
            "404 Discussion Not Found",
        ),
    ],
)
def test_missing_entities_use_the_message_body(api: httpx.Client, path: str, message: str) -> None:
    resp = api.get(path)
    assert resp.status_code == 404 and resp.json() == {"message": message}


@pytest.mark.parametrize(
    "path",
    [
        "/projects/group/project",
        "/projects/group/project/issues",
        "/nothing",
        "/projects/1/issues/1/closes_issues",
        "/projects/1/labels",
        "/projects/1/merge_requests/1/unknown",
    ],
)
def test_unknown_routes_use_the_error_body(raw: httpx.Client, path: str) -> None:
    resp = raw.get(f"/api/v4{path}")
    assert resp.status_code == 404 and resp.json() == {"error": "404 Not Found"}


def test_project_by_id_and_encoded_path_are_the_same(api: httpx.Client) -> None:
    by_id = api.get("/projects/1").json()
    assert api.get("/projects/group%2Fproject").json() == by_id
    assert api.get("/projects/GROUP%2FProject").json()["id"] == 1  # full-path lookup ignores case
    assert api.get("/projects/group%2Fsub%2Fother").json()["path_with_namespace"] == "group/sub/other"


def test_moved_project_redirects_to_the_numeric_id_on_the_same_host(
    sim: SimServer, api: httpx.Client
) -> None:
    resp = api.get("/projects/group%2Fold-project/issues/3", params={"foo": "bar"})
    assert resp.status_code == 301
    assert resp.headers["location"] == f"{sim.base_url}/api/v4/projects/1/issues/3?foo=bar"
    assert "moved permanently" in resp.json()["message"]
    followed = api.get("/projects/group%2Fold-project", follow_redirects=True)
    assert followed.status_code == 200 and followed.json()["id"] == 1
    assert api.post("/projects/group%2Fold-project/issues").json() == {
        "message": "Non GET methods are not allowed for moved projects"
    }


def test_non_get_methods_are_405(api: httpx.Client) -> None:
    resp = api.post("/projects/1/issues", json={"title": "x"})
    assert resp.status_code == 405 and resp.json() == {"message": "405 Method Not Allowed"}


def test_head_answers_headers_without_body(api: httpx.Client) -> None:
    resp = api.head("/projects/1/issues")
    assert resp.status_code == 200 and resp.content == b"" and resp.headers["x-total"] == "60"
    assert int(resp.headers["content-length"]) > 0


def test_token_modes(sim: SimServer, api: httpx.Client) -> None:
    sim.control.set_option("token_mode", "expired")
    resp = api.get("/user")
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_token"
    sim.control.set_option("token_mode", "insufficient_scope")
    resp = api.get("/projects/1")
    assert resp.status_code == 403 and resp.json()["scope"] == "api"
    sim.control.set_option("token_mode", "valid")
    assert api.get("/projects/1").status_code == 200


def test_a_disabled_feature_is_403_on_its_routes_in_that_project_only(
    sim: SimServer, api: httpx.Client
) -> None:
    settings = sim.control.set_project_option("group/project", "issues_enabled", False)
    assert settings["issues_enabled"] is False and settings["merge_requests_enabled"] is True
    forbidden = {"message": "403 Forbidden"}
    for path in ("issues", "issues/3", "issues/3/discussions", "issues/3/resource_label_events"):
        resp = api.get(f"/projects/1/{path}")
        assert (resp.status_code, resp.json()) == (403, forbidden), path
    assert api.get("/projects/1/issues/99999").status_code == 403  # the feature check comes first
    assert api.get("/projects/1/merge_requests").status_code == 200
    assert api.get("/projects/1/merge_requests/2/discussions").status_code == 200
    assert api.get("/projects/2/issues").status_code == 200  # the other project is untouched
    closes = [api.get(f"/projects/1/merge_requests/{m}/closes_issues").json() for m in range(1, 21)]
    assert closes == [[]] * 20  # the token cannot read issues of that project any more
    sim.control.set_project_option(1, "merge_requests_enabled", False)
    assert api.get("/projects/1/merge_requests/2").json() == forbidden
    assert sim.control.project_options("group/project") == {
        "issues_enabled": False, "merge_requests_enabled": False, "external_tracker": False
    }
    with pytest.raises(InvalidParamsError, match="unknown project option"):
        sim.control.set_project_option(1, "wiki_enabled", False)
    with pytest.raises(InvalidParamsError, match="no project"):
        sim.control.set_project_option("nope/nope", "issues_enabled", False)


def test_non_numeric_iid_is_a_400(api: httpx.Client) -> None:
    assert api.get("/projects/1/issues/abc").json() == {"error": "issue_iid is invalid"}
    assert api.get("/projects/1/merge_requests/x1").json() == {"error": "merge_request_iid is invalid"}


def test_hidden_issue_is_404_everywhere(sim: SimServer, api: httpx.Client) -> None:
    sim.control.mutate("hide_issue", project="group/project", iid=4)
    assert api.get("/projects/1/issues/4").json() == {"message": "404 Issue Not Found"}
    assert api.get("/projects/1/issues/4/resource_state_events").status_code == 404
    assert 4 not in [i["iid"] for i in api.get("/projects/1/issues", params={"per_page": 100}).json()]
    assert api.get("/projects/1/issues").headers["x-total"] == "59"
