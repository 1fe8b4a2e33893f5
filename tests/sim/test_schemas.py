"""Simulator payloads validate against GitLab's own JSON Schemas (copied unmodified to ./schemas/).

Relative ``$ref``s (``user/basic.json``, ``milestone.json``…) resolve from the schemas directory
through a ``referencing`` registry. Two upstream quirks are handled openly:
- ``user/public.json`` declares ``"twitter": {"type": "string "}`` (trailing space, an unknown
  type to any validator); the test strips it.
- ``notes.json`` (``additionalProperties: false``) was written for issue notes; MR DiffNotes also
  carry ``position``/``commit_id`` and resolved notes a ``resolved_by`` user object, as GitLab's
  Note entity exposes. MR notes validate against notes.json extended with exactly those keys.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SCHEMAS = Path(__file__).resolve().parent / "schemas"


def _load(path: Path) -> Any:
    data = json.loads(path.read_text())
    if path.name == "public.json":
        data["properties"]["twitter"]["type"] = "string"
    return data


def _retrieve(uri: str) -> Resource[Any]:
    return DRAFT4.create_resource(_load(Path(uri.removeprefix("file://"))))


REGISTRY: Registry[Any] = Registry(retrieve=_retrieve)  # type: ignore[call-arg]


def validator(name: str, patch: Any = None) -> Draft4Validator:
    """A validator for one schema file, refs resolved relative to it."""
    uri = (SCHEMAS / name).as_uri()
    schema = _load(SCHEMAS / name)
    if patch is not None:
        patch(schema)
    registry = REGISTRY.with_resource(uri, DRAFT4.create_resource(schema))
    return Draft4Validator({"$ref": uri}, registry=registry)


def check(name: str, instance: Any, patch: Any = None) -> None:
    errors = sorted(validator(name, patch).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def _mr_note_extension(schema: dict[str, Any]) -> None:
    props = schema["items"]["properties"]
    props["position"] = {"type": "object"}
    props["commit_id"] = {"type": ["string", "null"]}
    props["resolved_by"] = copy.deepcopy(props["author"]) | {"type": ["object", "null"]}


TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def all_pages(api: httpx.Client, path: str) -> list[Any]:
    items: list[Any] = []
    page: str | None = "1"
    while page:
        resp = api.get(path, params={"per_page": 100, "page": page})
        assert resp.status_code == 200
        items += resp.json()
        page = resp.headers["X-Next-Page"]
    return items


def test_issue_list_and_single_validate(api: httpx.Client) -> None:
    issues = all_pages(api, "/projects/1/issues")
    assert len(issues) == 60
    for issue in issues:
        check("issue.json", issue)
        assert TIMESTAMP.match(issue["created_at"]) and TIMESTAMP.match(issue["updated_at"])
    with_milestone = next(i for i in issues if i["milestone"])
    check("milestone.json", with_milestone["milestone"])
    check("issue.json", api.get("/projects/1/issues/5").json())
    check("issue.json", api.get("/projects/group%2Fsub%2Fother/issues/2").json())


def test_merge_request_list_single_and_simple_validate(api: httpx.Client) -> None:
    mrs = all_pages(api, "/projects/1/merge_requests")
    assert len(mrs) == 20
    for mr in mrs:
        check("merge_request.json", mr)
        check("merge_request.json", api.get(f"/projects/1/merge_requests/{mr['iid']}").json())
    assert {mr["state"] for mr in mrs} >= {"opened", "merged"}
    for simple in api.get("/projects/1/merge_requests", params={"view": "simple"}).json():
        check("merge_request_simple.json", simple)


def test_notes_validate_for_issues_strictly_and_mrs_with_diff_fields(api: httpx.Client) -> None:
    for iid in range(1, 16):
        for discussion in all_pages(api, f"/projects/1/issues/{iid}/discussions"):
            check("notes.json", discussion["notes"])
    diff_notes = 0
    for iid in range(1, 21):
        for discussion in all_pages(api, f"/projects/1/merge_requests/{iid}/discussions"):
            check("notes.json", discussion["notes"], _mr_note_extension)
            diff_notes += sum(1 for n in discussion["notes"] if n["type"] == "DiffNote")
    assert diff_notes > 0


def test_diff_note_position_has_the_documented_shape(api: httpx.Client) -> None:
    mr = api.get("/projects/1/merge_requests/7").json()
    notes = [
        n
        for d in all_pages(api, "/projects/1/merge_requests/7/discussions")
        for n in d["notes"]
        if n["type"] == "DiffNote"
    ]
    assert notes, "MR !7 (a hot entity) has DiffNotes"
    files = {f["new_path"] for f in all_pages(api, "/projects/1/merge_requests/7/diffs")}
    for note in notes:
        pos = note["position"]
        assert set(pos) >= {
            "base_sha",
            "start_sha",
            "head_sha",
            "old_path",
            "new_path",
            "position_type",
            "old_line",
            "new_line",
            "line_range",
        }
        assert pos["position_type"] == "text"
        assert pos["head_sha"] == mr["diff_refs"]["head_sha"] == note["commit_id"]
        assert pos["new_path"] in files
        assert pos["old_line"] is not None or pos["new_line"] is not None
        for end in ("start", "end"):
            assert re.fullmatch(r"[0-9a-f]{40}_\d+_\d+", pos["line_range"][end]["line_code"])
        assert note["resolvable"] is True and isinstance(note["resolved"], bool)


def test_closes_issues_items_are_issues(api: httpx.Client) -> None:
    found = 0
    for iid in range(1, 21):
        for issue in api.get(f"/projects/1/merge_requests/{iid}/closes_issues").json():
            check("issue.json", issue)
            found += 1
    assert found > 0


def test_project_user_and_metadata_validate(api: httpx.Client) -> None:
    check("project.json", api.get("/projects/1").json())
    check("project.json", api.get("/projects/group%2Fsub%2Fother").json())
    user = api.get("/user").json()
    check("user/public.json", user)
    check(
        "user/basic.json", {k: user[k] for k in ("id", "name", "username", "state", "avatar_url", "web_url")}
    )
    check("metadata.json", api.get("/metadata").json())
    check("metadata.json", api.get("/version").json())


@pytest.mark.parametrize(
    "what", ["resource_state_events", "resource_label_events", "resource_milestone_events"]
)
def test_resource_events_have_the_documented_fields(api: httpx.Client, what: str) -> None:
    seen = deleted_labels = ghosts = 0
    for kind, prefix in (("Issue", "issues"), ("MergeRequest", "merge_requests")):
        for iid in range(1, 21):
            entity = api.get(f"/projects/1/{prefix}/{iid}").json()
            for event in all_pages(api, f"/projects/1/{prefix}/{iid}/{what}"):
                seen += 1
                assert event["resource_type"] == kind and event["resource_id"] == entity["id"]
                assert TIMESTAMP.match(event["created_at"])
                assert event["created_at"] <= entity["updated_at"]
                check("user/basic.json", event["user"])
                ghosts += event["user"]["username"] == "ghost"
                if what == "resource_label_events":
                    assert event["action"] in ("add", "remove")
                    if event["label"] is None:  # the label was deleted since (GitLab shows null)
                        deleted_labels += 1
                    else:
                        assert set(event["label"]) >= {"id", "name", "color"}
                elif what == "resource_milestone_events":
                    assert event["action"] in ("add", "remove")
                    check("milestone.json", event["milestone"])
                else:
                    assert event["state"] in ("opened", "closed", "merged", "locked", "reopened")
                    assert "source_commit" in event and "source_merge_request_id" in event
    assert seen > 0
    if what == "resource_label_events":  # what any long-lived GitLab has: deleted labels and users
        assert deleted_labels > 0 and ghosts > 0


def test_validation_is_not_vacuous(api: httpx.Client) -> None:
    """The same validators reject payloads missing what the schemas require."""
    issue = api.get("/projects/1/issues/1").json()
    del issue["user_notes_count"]
    assert list(validator("issue.json").iter_errors(issue))
    mr = api.get("/projects/1/merge_requests/1").json()
    mr["author"] = {"id": 1}
    assert list(validator("merge_request.json").iter_errors(mr))  # via the user/basic.json $ref
    project = api.get("/projects/1").json() | {"unexpected": 1}
    assert list(validator("project.json").iter_errors(project))
