"""Real GitLab payloads (client-library fixtures, see fixtures/SOURCES.md) decode through the client.

They are served byte for byte through a MockTransport so the client's own decoders, not a
separate code path, are what is tested; raw bytes must come back unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from lore_daemon.gitlab import GitLabClient

from .support import BASE, FAST, TOKEN, Script

FIXTURES = Path(__file__).parent / "fixtures"


def body(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def client_for(script: Script) -> GitLabClient:
    return GitLabClient(BASE, TOKEN, retry=FAST, transport=script.transport())


async def test_real_gitlab_com_merge_request() -> None:
    raw = body("go-gitlab/get_merge_request.json")
    script = Script().on("/api/v4/projects/278964/merge_requests/14656", httpx.Response(200, content=raw))
    async with client_for(script) as client:
        fetched = await client.get_merge_request(278964, 14656)
    mr = fetched.item
    assert fetched.raw == raw
    assert (mr.id, mr.iid, mr.project_id, mr.state) == (33092005, 14656, 278964, "opened")
    assert mr.updated_at == "2019-08-20T09:09:56.690Z"
    assert mr.author is not None and mr.author.username
    assert mr.milestone is not None  # the 2019 milestone lacks `expired`; we must still accept it
    assert mr.web_url.startswith("https://gitlab.com/")


async def test_single_issue_without_user_notes_count() -> None:
    raw = body("go-gitlab/issue_move.json")
    script = Script().on("/api/v4/projects/5/issues/11", httpx.Response(200, content=raw))
    async with client_for(script) as client:
        fetched = await client.get_issue(5, 11)
    assert fetched.raw == raw
    assert (fetched.item.id, fetched.item.iid, fetched.item.state) == (92, 11, "opened")
    assert fetched.item.user_notes_count == 0  # absent upstream → default


async def test_issue_inside_a_list_page_keeps_its_bytes() -> None:
    raw = body("go-gitlab/issue_move.json").strip()
    page = b"[" + raw + b"]"
    script = Script().on("/api/v4/projects/5/issues", httpx.Response(200, content=page))
    async with client_for(script) as client:
        pages = [p async for p in client.iter_issues(5)]
    assert [f.raw for f in pages[0]] == [raw]


async def test_mr_diffs() -> None:
    raw = body("go-gitlab/list_merge_request_diff.json")
    script = Script().on("/api/v4/projects/1/merge_requests/1/diffs", httpx.Response(200, content=raw))
    async with client_for(script) as client:
        diffs = await client.list_mr_diffs(1, 1)
    expected = json.loads(raw)
    assert [(d.old_path, d.new_path, d.new_file, d.renamed_file, d.deleted_file) for d in diffs] == [
        (e["old_path"], e["new_path"], e["new_file"], e["renamed_file"], e["deleted_file"]) for e in expected
    ]


async def test_label_events_with_crlf_line_ends() -> None:
    raw = body("gitlab4j/label-events.json")
    assert b"\r\n" in raw
    script = Script().on(
        "/api/v4/projects/1/issues/11/resource_label_events", httpx.Response(200, content=raw)
    )
    async with client_for(script) as client:
        events = await client.list_resource_events(1, "issue", 11, "label")
    expected = json.loads(raw)
    assert [(e.id, e.action, e.resource_type, e.label.name if e.label else None) for e in events] == [
        (x["id"], x["action"], x["resource_type"], x["label"]["name"]) for x in expected
    ]


async def test_merge_request_discussions() -> None:
    raw = body("gitlab4j/merge-request-discussions.json")
    script = Script().on("/api/v4/projects/1/merge_requests/1/discussions", httpx.Response(200, content=raw))
    async with client_for(script) as client:
        discussions = await client.list_discussions(1, "mr", 1)
    expected = json.loads(raw)
    assert [d.id for d in discussions] == [x["id"] for x in expected]
    assert [len(d.notes) for d in discussions] == [len(x["notes"]) for x in expected]
    first = discussions[0].notes[0]
    note = expected[0]["notes"][0]
    assert first.author is not None and first.author.username == note["author"]["username"]
    assert (first.id, first.type, first.resolvable) == (note["id"], note["type"], note["resolvable"])
    assert first.body == "" and "body" not in note  # this fixture omits body; the model defaults it
    assert first.system is note["system"]
