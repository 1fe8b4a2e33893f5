"""Same seed → same data; the data set has the properties other tests rely on."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from lore_daemon.sim import SimConfig, SimServer
from lore_daemon.sim.app import SimApp
from lore_daemon.sim.notes import discussions


def _dump(config: SimConfig) -> str:
    with SimServer(config) as sim:
        text = json.dumps(sim.control.dump("group/project"), sort_keys=True)
        return text.replace(sim.base_url, "BASE").replace(sim.base_url.split("//")[1].split(":")[0], "HOST")


def test_same_seed_same_dump_other_seed_other_dump() -> None:
    config = SimConfig(seed=11, issues=40, mrs=12, notes_per_entity=5)
    assert _dump(config) == _dump(config)
    assert _dump(config) != _dump(SimConfig(seed=12, issues=40, mrs=12, notes_per_entity=5))


def test_dump_has_everything_for_each_entity() -> None:
    with SimServer(SimConfig(seed=2, issues=30, mrs=10, notes_per_entity=4)) as sim:
        dump: dict[str, Any] = sim.control.dump(1)
    assert [i["iid"] for i in dump["issues"]] == list(range(1, 31))
    assert [m["iid"] for m in dump["merge_requests"]] == list(range(1, 11))
    assert set(dump["discussions"]["issues"]) == {str(i) for i in range(1, 31)}
    assert set(dump["events"]["merge_requests"]["1"]) == {"state", "label", "milestone"}
    assert set(dump["diffs"]) == set(dump["closes_issues"]) == {str(i) for i in range(1, 11)}
    assert all(dump["diffs"][k] for k in dump["diffs"])
    assert dump["project"]["path_with_namespace"] == "group/project"


def test_notes_average_and_shapes() -> None:
    app = SimApp(SimConfig(seed=4, issues=400, mrs=100, notes_per_entity=8), "http://127.0.0.1:1")
    kinds: Counter[str] = Counter()
    notes = 0
    for table in app.dataset.tables.values():
        if table.project_id != 1:
            continue
        for iid in range(1, table.count + 1):
            for d in discussions(app.dataset, table, iid):
                notes += len(d["notes"])
                for n in d["notes"]:
                    kinds["system" if n["system"] else (n["type"] or "individual")] += 1
                assert d["individual_note"] == (len(d["notes"]) == 1 and d["notes"][0]["type"] is None)
    assert 6.5 <= notes / 500 <= 9.5
    assert kinds["system"] and kinds["DiffNote"] and kinds["DiscussionNote"] and kinds["individual"]


def test_some_issues_share_an_exact_updated_at() -> None:
    app = SimApp(SimConfig(seed=1, issues=200), "http://127.0.0.1:1")
    table = app.dataset.table(1, "issue")
    groups = Counter(table.updated[1:])
    assert sum(1 for n in groups.values() if n >= 5) >= 4


def test_fifty_thousand_issues_build_quickly() -> None:
    """Not a timing assertion: it must simply finish, lazily (notes are not built up front)."""
    started = time.perf_counter()
    app = SimApp(SimConfig(seed=1, issues=50_000, mrs=5_000), "http://127.0.0.1:1")
    print(f"built 55,000 entities in {time.perf_counter() - started:.2f} s")
    assert app.dataset.table(1, "issue").count == 50_000
    assert app.dataset.plan_cache == {}
