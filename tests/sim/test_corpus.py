"""The curated project ``acme/brightday``: GitLab-shaped payloads with the hand-written text, and a
query set whose paraphrases share no indexed term with what they must find."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lore_daemon.sim import SimConfig, SimServer
from lore_daemon.sim.corpus import CORPUS_PROJECT_PATH, count, entities
from lore_daemon.store.connection import open_connection
from tests.bench._corpus import (
    build_corpus_engine,
    entity_documents,
    load_queries,
    mirror_corpus,
    shared_terms,
)

from .test_schemas import _mr_note_extension, all_pages, check

CORPUS = SimConfig(seed=7, issues=5, mrs=3, notes_per_entity=2, corpus=True)
PROJECT = "acme%2Fbrightday"


@pytest.fixture(scope="module")
def corpus_sim() -> Iterator[SimServer]:
    with SimServer(CORPUS) as server:
        yield server


@pytest.fixture
def corpus_api(corpus_sim: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"{corpus_sim.base_url}/api/v4", headers={"PRIVATE-TOKEN": corpus_sim.token},
        trust_env=False, timeout=10,
    ) as client:
        yield client


def test_the_corpus_is_served_with_its_text_and_validates(corpus_api: httpx.Client) -> None:
    assert (count("issue"), count("mr")) == (60, 25)
    check("project.json", corpus_api.get(f"/projects/{PROJECT}").json())
    issues = all_pages(corpus_api, f"/projects/{PROJECT}/issues")
    mrs = all_pages(corpus_api, f"/projects/{PROJECT}/merge_requests")
    assert (len(issues), len(mrs)) == (60, 25)
    for item in issues + mrs:
        curated = entities()[("issue" if item in issues else "mr", item["iid"])]
        check("issue.json" if item in issues else "merge_request.json", item)
        assert (item["title"], item["description"]) == (curated.title, curated.description)
        assert item["labels"] == list(curated.labels)
        assert item["user_notes_count"] == len(curated.comments)
        assert item["references"]["full"].startswith(CORPUS_PROJECT_PATH)
    for iid in (1, 3, 8):
        notes = [d["notes"] for d in all_pages(corpus_api, f"/projects/{PROJECT}/issues/{iid}/discussions")]
        for thread in notes:
            check("notes.json", thread)
        assert [thread[0]["body"] for thread in notes] == list(entities()[("issue", iid)].comments)
    for thread in all_pages(corpus_api, f"/projects/{PROJECT}/merge_requests/3/discussions"):
        check("notes.json", thread["notes"], _mr_note_extension)
    closes = corpus_api.get(f"/projects/{PROJECT}/merge_requests/1/closes_issues").json()
    assert [i["iid"] for i in closes] in ([1], []), "closes #1 (unless generated onto another branch)"


def test_seeded_projects_are_unchanged_by_the_corpus(corpus_api: httpx.Client) -> None:
    with (
        SimServer(SimConfig(seed=7, issues=5, mrs=3, notes_per_entity=2)) as plain,
        httpx.Client(
            base_url=f"{plain.base_url}/api/v4", headers={"PRIVATE-TOKEN": plain.token}, trust_env=False
        ) as other,
    ):
        for path in ("/projects/1/issues/2", "/projects/1/merge_requests/1/discussions"):
            mine, theirs = corpus_api.get(path).json(), other.get(path).json()
            assert _PORT.sub("", str(mine)) == _PORT.sub("", str(theirs)), path
    assert corpus_api.get("/projects/acme%2Fnope").status_code == 404


_PORT = re.compile(r"127\.0\.0\.1:\d+")


async def test_paraphrase_queries_share_no_term_with_their_targets(
    corpus_sim: SimServer, tmp_path: Path
) -> None:
    engine = build_corpus_engine(tmp_path, corpus_sim)
    try:
        await mirror_corpus(engine)
    finally:
        await engine.aclose()
    queries = load_queries(corpus_sim.base_url)
    assert len(queries) >= 40 and {q.type for q in queries} == {"paraphrase", "keyword", "reference"}
    conn = open_connection(tmp_path / "lore.db")
    try:
        for query in queries:
            docs = set().union(*(entity_documents(conn, ref) for ref in query.expected))
            assert docs, f"{query.expected} has documents"
            if query.type == "paraphrase":
                assert shared_terms(conn, query.text, docs) == set(), query.text
            if query.type == "keyword":
                assert shared_terms(conn, query.text, docs), query.text
    finally:
        conn.close()


def test_mutations_add_and_delete_notes_of_a_curated_entity() -> None:
    with (
        SimServer(CORPUS) as sim,
        httpx.Client(
            base_url=f"{sim.base_url}/api/v4", headers={"PRIVATE-TOKEN": sim.token}, trust_env=False
        ) as api,
    ):
        comments = list(entities()[("issue", 5)].comments)
        path = f"/projects/{PROJECT}/issues/5"
        added = sim.control.mutate("add_note", project=CORPUS_PROJECT_PATH, kind="issue", iid=5,
                                   body="One more remark")
        threads = all_pages(api, f"{path}/discussions")
        assert [t["notes"][0]["body"] for t in threads] == [*comments, "One more remark"]
        victim = threads[0]["notes"][0]["id"]
        sim.control.mutate("delete_note", project=CORPUS_PROJECT_PATH, kind="issue", iid=5, note_id=victim)
        left = all_pages(api, f"{path}/discussions")
        assert [t["notes"][0]["body"] for t in left] == [*comments[1:], "One more remark"]
        assert added["note_id"] in {n["id"] for t in left for n in t["notes"]}
        assert api.get(path).json()["user_notes_count"] == len(comments)
