"""Compare the local mirror with the simulator's truth (everything a sync is supposed to copy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lore_daemon.sim import SimServer
from lore_daemon.timeutil import iso_to_ms

from .conftest import connect

_KINDS = (
    ("issues", "issue", "issue_labels", "issue_id"),
    ("merge_requests", "merge_request", "mr_labels", "merge_request_id"),
)
_EVENT_TABLES = {
    "state": "resource_state_events",
    "label": "resource_label_events",
    "milestone": "resource_milestone_events",
}


def truth_of(sim: SimServer, project: str) -> dict[str, Any]:
    dump = sim.control.dump(project)
    out: dict[str, Any] = {}
    for table, entity_type, _, _ in _KINDS:
        hidden = {int(i) for i in dump["hidden"][table]}
        for item in dump[table]:
            if item["iid"] in hidden:
                continue
            key = (entity_type, item["iid"])
            discussions = dump["discussions"][table].get(str(item["iid"]), [])
            events = dump["events"][table].get(str(item["iid"]), {})
            out[key] = {
                "row": (
                    item["id"],
                    iso_to_ms(item["updated_at"]),
                    item["title"],
                    item["state"],
                    sorted(item["labels"]),
                ),
                "notes": sorted(n["id"] for d in discussions for n in d["notes"]),
                "events": {kind: sorted(e["id"] for e in events.get(kind, [])) for kind in _EVENT_TABLES},
            }
            if entity_type == "merge_request":
                out[key]["closes"] = sorted(i["id"] for i in dump["closes_issues"].get(str(item["iid"]), []))
                out[key]["diffs"] = sorted(
                    (f["old_path"], f["new_path"]) for f in dump["diffs"].get(str(item["iid"]), [])
                )
    return out


def mirror_of(db_path: Path, project_id: int) -> dict[str, Any]:
    conn = connect(db_path)
    try:
        out: dict[str, Any] = {}
        for table, entity_type, label_table, label_fk in _KINDS:
            for gid, iid, updated, title, state in conn.execute(
                f"SELECT gitlab_id, iid, updated_at, title, state FROM {table} WHERE project_id = ?",
                (project_id,),
            ).fetchall():
                labels = sorted(
                    r[0]
                    for r in conn.execute(f"SELECT label FROM {label_table} WHERE {label_fk} = ?", (gid,))
                )
                notes = sorted(
                    r[0]
                    for r in conn.execute(
                        "SELECT n.gitlab_id FROM notes n JOIN discussions d ON n.discussion_id = d.id"
                        " WHERE d.noteable_type = ? AND d.noteable_id = ?",
                        (entity_type, gid),
                    )
                )
                events = {
                    kind: sorted(
                        r[0]
                        for r in conn.execute(
                            f"SELECT gitlab_id FROM {events_table} WHERE entity_type = ? AND entity_id = ?",
                            (entity_type, gid),
                        )
                    )
                    for kind, events_table in _EVENT_TABLES.items()
                }
                entry: dict[str, Any] = {
                    "row": (gid, updated, title, state, labels),
                    "notes": notes,
                    "events": events,
                }
                if entity_type == "merge_request":
                    entry["closes"] = sorted(
                        r[0]
                        for r in conn.execute(
                            "SELECT target_id FROM entity_references WHERE source_type = 'merge_request'"
                            " AND source_id = ?",
                            (gid,),
                        )
                    )
                    entry["diffs"] = sorted(
                        tuple(r)
                        for r in conn.execute(
                            "SELECT old_path, new_path FROM mr_file_changes WHERE merge_request_id = ?",
                            (gid,),
                        )
                    )
                out[(entity_type, iid)] = entry
        return out
    finally:
        conn.close()


def differences(truth: dict[str, Any], mirror: dict[str, Any]) -> list[str]:
    """Human-readable differences (empty when the mirror equals the truth)."""
    problems = [f"missing {key}" for key in truth if key not in mirror]
    problems += [f"unexpected {key}" for key in mirror if key not in truth]
    for key in truth.keys() & mirror.keys():
        for part, value in truth[key].items():
            if mirror[key].get(part) != value:
                problems.append(f"{key} {part}: mirror {mirror[key].get(part)!r} != truth {value!r}")
    return sorted(problems)
