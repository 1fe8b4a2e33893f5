"""``lore/get`` end to end from the mirror: daemon subprocess over stdio, a real SQLite file synced
from the simulator, results compared with the simulator's own truth (``dump``). Nothing here
syncs, so one daemon serves the module (read-through is ``test_read_through_e2e.py``)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from lore_daemon.sim import SimServer
from lore_daemon.timeutil import iso_to_ms
from tests.daemon.support import RawDaemon
from tests.daemon.test_methods import _schema

from .support import OTHER, PROJECT

ALL = ["discussions", "events", "links", "fileChanges"]


@pytest.fixture(scope="module")
def truth(sim: SimServer) -> dict[str, Any]:
    return sim.control.dump(PROJECT)


def _ms(value: str) -> int:
    return iso_to_ms(value)


def _by_iid(items: list[dict[str, Any]], iid: int) -> dict[str, Any]:
    return next(item for item in items if item["iid"] == iid)


def get(reader: RawDaemon, params: dict[str, Any]) -> dict[str, Any]:
    response = reader.request("lore/get", params, timeout=20)
    assert "result" in response, response
    result: dict[str, Any] = response["result"]
    return result


def get_error(reader: RawDaemon, params: dict[str, Any]) -> dict[str, Any]:
    response = reader.request("lore/get", params, timeout=20)
    assert "error" in response, response
    error: dict[str, Any] = response["error"]
    return error


def test_an_issue_by_ref_is_the_entity_gitlab_has(
    reader: RawDaemon, sim: SimServer, truth: dict[str, Any]
) -> None:
    before = sim.control.stats()["last_seq"]

    got = get(reader, {"ref": "#2", "include": ALL})

    jsonschema.validate(got, _schema("EntityDetail"))
    issue = _by_iid(truth["issues"], 2)
    assert (got["kind"], got["iid"], got["project"]) == ("issue", 2, PROJECT)
    assert got["title"] == issue["title"] and got["description"] == issue["description"]
    assert got["state"] == issue["state"] and got["webUrl"] == issue["web_url"]
    assert got["author"] == issue["author"]["username"]
    assert got["labels"] == sorted(issue["labels"])
    assert got["assignees"] == sorted(a["username"] for a in issue["assignees"])
    assert got["milestone"] == (issue["milestone"] or {}).get("title")
    assert _ms(got["updatedAt"]) == _ms(issue["updated_at"])
    assert got["userNotesCount"] == issue["user_notes_count"]
    assert got["reviewers"] == [] and got["draft"] is None and got["fileChanges"] == []
    assert got["local"]["source"] == "mirror" and got["local"]["ageMs"] >= 0 and got["sync"] is None
    assert sim.control.log(since=before) == []  # no maxAgeMs: the mirror alone answered


def test_discussions_and_notes_are_as_gitlab_has_them(reader: RawDaemon, truth: dict[str, Any]) -> None:
    mr = get(reader, {"ref": "!1"})
    issue = get(reader, {"ref": "#5"})

    for entity, threads in ((mr, truth["discussions"]["merge_requests"]["1"]),
                            (issue, truth["discussions"]["issues"]["5"])):
        assert [d["id"] for d in entity["discussions"]] == [t["id"] for t in threads]
        for got, want in zip(entity["discussions"], threads, strict=True):
            assert got["individualNote"] == want["individual_note"]
            assert [n["id"] for n in got["notes"]] == [n["id"] for n in want["notes"]]
            for note, expected in zip(got["notes"], want["notes"], strict=True):
                assert note["body"] == expected["body"] and note["system"] == expected["system"]
                assert note["author"] == expected["author"]["username"]
                assert note["type"] == expected["type"]
    system = [n for d in issue["discussions"] for n in d["notes"] if n["system"]]
    assert system, "issue #5 has system notes in the simulator's data"
    diff_notes = [n for d in mr["discussions"] for n in d["notes"] if n["type"] == "DiffNote"]
    assert diff_notes
    threads = truth["discussions"]["merge_requests"]["1"]
    want = {n["id"]: n["position"] for t in threads for n in t["notes"] if n.get("position")}
    for note in diff_notes:
        position, expected = note["position"], want[note["id"]]
        assert (position["newPath"], position["oldPath"]) == (expected["new_path"], expected["old_path"])
        assert (position["newLine"], position["oldLine"]) == (expected["new_line"], expected["old_line"])
        assert position["headSha"] == expected["head_sha"] and position["lineRange"] == expected["line_range"]
    assert all(n["position"] is None for d in issue["discussions"] for n in d["notes"])


def test_links_go_both_ways(reader: RawDaemon, truth: dict[str, Any]) -> None:
    mr = get(reader, {"kind": "mr", "iid": 1, "project": PROJECT, "include": ["links"]})
    closes = [i["iid"] for i in truth["closes_issues"]["1"]]
    assert [link["iid"] for link in mr["links"]["closes"]] == sorted(closes)
    assert all(link["kind"] == "issue" and link["inMirror"] for link in mr["links"]["closes"])
    assert mr["links"]["closedBy"] == [] and mr["discussions"] is None

    closing = truth["closes_issues"].items()
    closers = sorted(int(m) for m, issues in closing if 38 in [i["iid"] for i in issues])
    issue = get(reader, {"ref": "#38", "include": ["links"]})
    assert closers == [8, 12]
    assert [(link["kind"], link["iid"], link["project"]) for link in issue["links"]["closedBy"]] == [
        ("mr", 8, PROJECT), ("mr", 12, PROJECT),
    ]
    titles = {m["iid"]: m["title"] for m in truth["merge_requests"]}
    assert [link["title"] for link in issue["links"]["closedBy"]] == [titles[8], titles[12]]


def test_file_changes_and_events(reader: RawDaemon, truth: dict[str, Any]) -> None:
    mr = get(reader, {"ref": f"{PROJECT}!1", "include": ["fileChanges", "events"]})
    files = truth["diffs"]["1"]
    assert sorted((f["oldPath"], f["newPath"], f["newFile"], f["renamedFile"], f["deletedFile"])
                  for f in mr["fileChanges"]) == sorted(
        (f["old_path"], f["new_path"], f["new_file"], f["renamed_file"], f["deleted_file"]) for f in files
    )
    assert mr["links"] is None and mr["discussions"] is None
    events = truth["events"]["merge_requests"]["1"]
    want = sorted((kind, e["id"]) for kind in ("state", "label", "milestone") for e in events[kind])
    assert sorted((e["type"], e["id"]) for e in mr["events"]) == want
    times = [_ms(e["createdAt"]) for e in mr["events"]]
    assert times == sorted(times)  # one list, oldest first
    labels = [e for e in mr["events"] if e["type"] == "label"]
    assert all(e["action"] in ("add", "remove") and e["label"] for e in labels)
    assert mr["sourceBranch"] and mr["targetBranch"] and isinstance(mr["draft"], bool)
    assert mr["detailedMergeStatus"] is not None and mr["confidential"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"ref": "#3"},
        {"ref": "group/project#3"},
        {"ref": "GROUP/Project#3"},
        {"url": "{base}/group/project/-/issues/3"},
        {"ref": "{base}/group/project/-/work_items/3#note_1"},
        {"kind": "issue", "iid": 3},
        {"kind": "issue", "iid": 3, "project": "1"},
    ],
)
def test_every_way_of_naming_an_entity(reader: RawDaemon, sim: SimServer, params: dict[str, Any]) -> None:
    filled = {k: v.format(base=sim.base_url) if isinstance(v, str) else v for k, v in params.items()}
    got = get(reader, {**filled, "include": []})
    assert (got["kind"], got["iid"], got["project"]) == ("issue", 3, PROJECT)


def test_an_entity_of_another_project(reader: RawDaemon, sim: SimServer) -> None:
    other = sim.control.dump(OTHER)
    got = get(reader, {"ref": f"{OTHER}!2", "include": []})
    assert (got["kind"], got["iid"], got["project"]) == ("mr", 2, OTHER)
    assert got["title"] == _by_iid(other["merge_requests"], 2)["title"]


@pytest.mark.parametrize(
    ("params", "code", "rpc_code"),
    [
        ({"ref": "#1", "url": "{base}/group/project/-/issues/1"}, "INVALID_PARAMS", -32602),
        ({}, "INVALID_PARAMS", -32602),
        ({"kind": "issue"}, "INVALID_PARAMS", -32602),
        ({"iid": 0, "kind": "issue"}, "INVALID_PARAMS", -32602),
        ({"ref": "twelve"}, "INVALID_TARGET", -32602),
        ({"ref": "https://elsewhere.example/group/project/-/issues/1"}, "TARGET_HOST_MISMATCH", -32602),
        ({"ref": "#1", "include": ["comments"]}, "INVALID_PARAMS", -32602),
        ({"ref": "#1", "maxAgeMs": -1}, "INVALID_PARAMS", -32602),
    ],
)
def test_bad_params_are_structured_errors(
    reader: RawDaemon, sim: SimServer, params: dict[str, Any], code: str, rpc_code: int
) -> None:
    filled = {k: v.format(base=sim.base_url) if isinstance(v, str) else v for k, v in params.items()}
    before = sim.control.stats()["last_seq"]
    error = get_error(reader, filled)
    assert error["code"] == rpc_code and error["data"]["code"] == code
    assert error["data"]["suggestion"]
    assert sim.control.log(since=before) == []
    assert "result" in reader.request("lore/status", {})  # and the daemon keeps serving


def test_an_entity_not_in_the_mirror_without_max_age_is_not_found(reader: RawDaemon, sim: SimServer) -> None:
    before = sim.control.stats()["last_seq"]
    error = get_error(reader, {"ref": "#9999"})
    data = error["data"]
    assert (error["code"], data["code"]) == (-32803, "NOT_IN_MIRROR")
    assert data["details"] == {"kind": "issue", "iid": 9999, "project": PROJECT}
    (action,) = data["actions"]
    assert action["kind"] == "syncTarget"
    assert action["request"] == {"method": "lore/get", "params": {"ref": "#9999", "maxAgeMs": 0}}
    assert action["command"] is None  # the bridge has no spelling for lore/get yet
    assert sim.control.log(since=before) == []
