"""``lore/search`` end to end (lexical): ranking, snippets, filters, source types, exact references
first, and that no query text — FTS5 syntax included — ever produces an error."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from lore_daemon.sim import SimServer
from tests.daemon.support import RawDaemon
from tests.daemon.test_methods import _schema

from .support import OTHER, PROJECT, query

Hit = dict[str, Any]


@pytest.fixture(scope="module")
def entities(sim: SimServer) -> dict[tuple[str, str, int], dict[str, Any]]:
    """(kind, project, iid) → the simulator's payload, for both projects."""
    out: dict[tuple[str, str, int], dict[str, Any]] = {}
    for project in (PROJECT, OTHER):
        dump = sim.control.dump(project)
        for kind, key in (("issue", "issues"), ("mr", "merge_requests")):
            for item in dump[key]:
                out[(kind, project, item["iid"])] = item
    return out


def search(reader: RawDaemon, params: dict[str, Any]) -> dict[str, Any]:
    response = reader.request("lore/search", params, timeout=20)
    assert "result" in response, response
    result: dict[str, Any] = response["result"]
    jsonschema.validate(result, _schema("SearchResult"))
    return result


def _key(hit: Hit) -> tuple[str, str, int]:
    return (hit["kind"], hit["project"], hit["iid"])


def _content(reader_db: Any, document_id: int) -> str:
    return str(query(reader_db, "SELECT content FROM documents WHERE id = ?", document_id)[0][0])


def test_words_are_found_ranked_and_marked(reader: RawDaemon) -> None:
    result = search(reader, {"query": "cache", "limit": 10})
    hits = result["hits"]
    assert result["mode"] == "lexical" and result["warnings"] == [] and len(hits) == 10
    assert [h["ranks"]["lexical"] for h in hits] == sorted(h["ranks"]["lexical"] for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert all(h["ranks"]["semantic"] is None and not h["exactReference"] for h in hits)
    assert len({_key(h) for h in hits}) == len(hits)  # one hit per entity
    assert all("<mark>cache</mark>" in h["snippet"].lower() for h in hits)


def test_every_entity_that_matches_is_found_once(reader: RawDaemon, entities: dict[Any, Any]) -> None:
    """"memory leak" is only ever in titles (never in the simulator's notes): the hits are exactly
    the entities with it in their title, each once, whichever of its documents ranked best."""
    titled = {k for k, e in entities.items() if "memory leak" in e["title"].lower()}
    hits = search(reader, {"query": "memory leak", "limit": 100})["hits"]
    assert titled and {_key(h) for h in hits} == titled and len(hits) == len(titled)
    for hit in hits:
        assert "<mark>memory</mark> <mark>leak</mark>" in hit["snippet"].lower()
        assert hit["state"] == entities[_key(hit)]["state"]


def test_stemming_prefixes_and_phrases(reader: RawDaemon) -> None:
    stemmed = search(reader, {"query": "crashes", "limit": 5})["hits"]
    assert stemmed and all("<mark>crash</mark>" in h["snippet"].lower() for h in stemmed)
    prefix = search(reader, {"query": "migra*", "limit": 5})["hits"]
    assert prefix and all("<mark>migration</mark>" in h["snippet"].lower() for h in prefix)
    phrase = search(reader, {"query": '"settings page"', "limit": 5})["hits"]
    assert phrase and all("<mark>settings</mark> <mark>page</mark>" in h["snippet"].lower() for h in phrase)


def test_excluded_words_are_not_in_any_hit(reader: RawDaemon, mirror: Any) -> None:
    hits = search(reader, {"query": "cache -timeout", "limit": 20})["hits"]
    assert hits
    for hit in hits:
        content = _content(mirror, hit["documentId"]).lower()
        assert "cache" in content and "timeout" not in content


@pytest.mark.parametrize(
    ("source_types", "allowed"),
    [(["issue"], {"issue"}), (["merge_request"], {"merge_request"}), (["discussion"], {"discussion"}),
     (["issue", "merge_request"], {"issue", "merge_request"})],
)
def test_source_types(reader: RawDaemon, source_types: list[str], allowed: set[str]) -> None:
    hits = search(reader, {"query": "cache", "sourceTypes": source_types, "limit": 30})["hits"]
    assert hits and {h["sourceType"] for h in hits} <= allowed


@pytest.mark.parametrize(
    ("filters", "check"),
    [
        ({"kind": "mr"}, lambda h, e: h["kind"] == "mr"),
        ({"state": "opened"}, lambda h, e: e["state"] == "opened"),
        ({"project": OTHER}, lambda h, e: h["project"] == OTHER),
        ({"labels": ["bug"]}, lambda h, e: "bug" in e["labels"]),
        ({"author": "brian.scott13"}, lambda h, e: e["author"]["username"] == "brian.scott13"),
        ({"milestone": "v1.2", "kind": "issue"},
         lambda h, e: h["kind"] == "issue" and (e["milestone"] or {}).get("title") == "v1.2"),
    ],
)
def test_filters_apply_to_each_hit_s_parent(
    reader: RawDaemon, entities: dict[Any, Any], filters: dict[str, Any], check: Any
) -> None:
    hits = search(reader, {"query": "the", **filters, "limit": 40})["hits"]
    assert hits
    assert all(check(h, entities[_key(h)]) for h in hits)
    unfiltered = {_key(h) for h in search(reader, {"query": "the", "limit": 100})["hits"]}
    assert unfiltered - {_key(h) for h in hits}  # the filter really removed something


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("#12", ("issue", PROJECT, 12)),
        ("why does #12 crash", ("issue", PROJECT, 12)),
        ("(!3),", ("mr", PROJECT, 3)),
        (f"{OTHER}#2 timeout", ("issue", OTHER, 2)),
        ("{base}/group/project/-/merge_requests/7/diffs please", ("mr", PROJECT, 7)),
        ("{base}/group/sub/other/-/work_items/4", ("issue", OTHER, 4)),
    ],
)
def test_an_exact_reference_ranks_that_entity_first(
    reader: RawDaemon, sim: SimServer, text: str, first: tuple[str, str, int]
) -> None:
    hits = search(reader, {"query": text.format(base=sim.base_url), "limit": 5})["hits"]
    assert _key(hits[0]) == first and hits[0]["exactReference"]
    assert hits[0]["sourceType"] == ("issue" if first[0] == "issue" else "merge_request")
    assert [h for h in hits[1:] if h["exactReference"]] == []
    assert len({_key(h) for h in hits}) == len(hits)


def test_a_reference_the_filters_exclude_is_not_forced_in(reader: RawDaemon) -> None:
    hits = search(reader, {"query": "#12", "kind": "mr", "limit": 5})["hits"]
    assert all(h["kind"] == "mr" and not h["exactReference"] for h in hits)
    other_host = search(reader, {"query": "https://elsewhere.example/group/project/-/issues/12", "limit": 5})
    assert not any(h["exactReference"] for h in other_host["hits"])


FTS5_SYNTAX = [
    '"', '""', '"""', "(", ")", "()", "((a)", "a)", "AND", "OR", "NOT", "a AND", "OR b", "NOT c", "a NOT",
    "NEAR", "NEAR(a b)", "NEAR(a b, 2)", "a NEAR/2 b", "*", "**", "*a", "a*b", "a**", "-", "--", "-a",
    "- a", "a -", ":", "a:b", "title:cache", "content:", "{title content}: cache", "^", "^cache", "+",
    "+cache", "'", "a'b", "\\", "\\\"", ",", ";", "cache;DROP TABLE documents", "%", "_", "a_b", "\u0000",
    "cache\u0000leak", "💥", "ﬁ ligature", "ß", "İstanbul", "\u200b", "\t\n", " ", "", "#", "!", "#0", "!0",
    "#99999999999999", "group/project#", "http://", "https://[::1", "OR OR OR", "-\"x\"", "\"a\" * \"b\"",
    "cache*)", "(cache OR", "x" * 2000, " ".join(["cache"] * 100),
]


@pytest.mark.parametrize("text", FTS5_SYNTAX)
def test_no_query_text_ever_errors(reader: RawDaemon, text: str) -> None:
    result = search(reader, {"query": text, "limit": 3})
    assert result["mode"] == "lexical" and len(result["hits"]) <= 3


def test_the_daemon_is_fine_after_every_special_character(reader: RawDaemon) -> None:
    assert "Traceback" not in reader.log_text()
    assert search(reader, {"query": "cache", "limit": 1})["hits"]


def test_too_many_words_and_only_exclusions_are_said(reader: RawDaemon) -> None:
    long = search(reader, {"query": " ".join(f"w{i}" for i in range(40)), "limit": 3})
    assert any("more than 32 words" in w for w in long["warnings"])
    only_not = search(reader, {"query": "-cache", "limit": 3})
    assert only_not["hits"] == [] and "only excluded words" in only_not["warnings"][0]


def test_when_no_document_has_every_word_any_word_is_enough(reader: RawDaemon) -> None:
    result = search(reader, {"query": "cache zzyzxnotaword", "limit": 5})
    assert result["hits"] and "match any" in result["warnings"][0]
    assert all("<mark>cache</mark>" in h["snippet"].lower() for h in result["hits"])


@pytest.mark.parametrize("mode", ["semantic", "hybrid"])
def test_a_vector_mode_without_vectors_runs_lexical_and_says_so(reader: RawDaemon, mode: str) -> None:
    result = search(reader, {"query": "cache", "mode": mode, "limit": 3})
    assert result["mode"] == "lexical" and result["hits"]
    assert mode in result["warnings"][0] and "lexical" in result["warnings"][0]
    assert search(reader, {"query": "cache", "limit": 3})["warnings"] == []


def test_has_more_says_whether_the_limit_cut_the_list(reader: RawDaemon) -> None:
    assert search(reader, {"query": "cache", "limit": 2})["hasMore"] is True
    rare = search(reader, {"query": "#12", "limit": 100, "sourceTypes": ["issue"]})
    assert rare["hasMore"] is False


@pytest.mark.parametrize(
    ("params", "path"),
    [({}, "$"), ({"query": "x", "limit": 101}, "$.limit"), ({"query": "x", "mode": "fuzzy"}, "$.mode"),
     ({"query": "x", "sourceTypes": ["note"]}, "$.sourceTypes[0]"), ({"query": 5}, "$.query")],
)
def test_bad_params_are_invalid_params(reader: RawDaemon, params: dict[str, Any], path: str) -> None:
    error = reader.request("lore/search", params)["error"]
    assert (error["data"]["code"], error["data"]["details"]["path"]) == ("INVALID_PARAMS", path)
