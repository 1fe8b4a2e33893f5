"""Discussions and notes of an issue or MR, generated lazily and deterministically.

An entity's *plan* (how many discussions, of which kind, with how many notes) is cheap and
cached, because list pages need ``user_notes_count`` for every item; the full note bodies are
only built when ``…/discussions`` is requested. Notes added by mutations live in the overlay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from lore_daemon.sim.corpus import curated_discussions, curated_note_count
from lore_daemon.sim.data import GHOST_USER_ID, USER_COUNT, Dataset, EntityTable, rng_for, sha1_hex
from lore_daemon.sim.diffs import diff_files, line_code, mr_shas
from lore_daemon.timeutil import ms_to_iso

ShapeKind = Literal["system", "individual", "thread", "diff"]
HOT_EVERY = 25  # every 25th entity (iid % 25 == 7) is "hot": > 1 page of discussions
VERY_HOT_EVERY = 1000  # iid % 1000 == 42: > 100 discussions, several pages even at per_page=100
VERY_HOT_EXTRA = 110  # individual notes added to a very hot entity's plan
GHOST_NOTE_SHARE = 0.03  # notes whose author was deleted since (shown as GitLab's Ghost User)
MAX_NOTES = 200  # generated note ids are gid * 256 + k
_PLAN_CACHE_LIMIT = 50_000

_ISSUE_SYSTEM = [
    "changed the description",
    "assigned to @{u}",
    "mentioned in merge request !{n}",
    "changed title from **{w}** to **{w} (v2)**",
    "marked the checklist item **step 1** as completed",
    "changed due date to {d}",
]
_MR_SYSTEM = [
    "added 1 commit",
    "requested review from @{u}",
    "approved this merge request",
    "marked this merge request as **ready**",
    "changed the description",
    "mentioned in issue #{n}",
]
_REMARKS = [
    "I can reproduce this on {w}.",
    "Looks good to me.",
    "Could we add a test for the {w} case?",
    "This also affects #{n}.",
    "Pushed a fix, please take another look.",
    "Why not reuse the {w} helper?",
    "Confirmed on staging.",
    "Let's split this into a follow-up issue.",
    "Nit: naming of {w}.",
]
_WORDS = ["retry", "cursor", "page", "token", "lock", "queue", "timeout", "cache", "migration"]


def very_hot(table: EntityTable, iid: int) -> bool:
    """Entities whose dependents span several pages at ``per_page=100`` (discussions, label events)."""
    return iid % VERY_HOT_EVERY == 42 and iid <= table.seeded


@dataclass(frozen=True, slots=True)
class Shape:
    kind: ShapeKind
    notes: int


def note_plan(ds: Dataset, table: EntityTable, iid: int) -> tuple[Shape, ...]:
    """The generated discussions' shapes. Averages ``notes_per_entity`` notes per entity."""
    curated = curated_note_count(table, iid)
    if curated is not None:
        return tuple(Shape("individual", 1) for _ in range(curated))
    key = (table.project_id, table.kind, iid)
    found: tuple[Shape, ...] | None = ds.plan_cache.get(key)
    if found is not None:
        return found
    if len(ds.plan_cache) >= _PLAN_CACHE_LIMIT:
        ds.plan_cache.clear()
    k = ds.config.notes_per_entity if iid <= table.seeded else 0  # created by a mutation: none yet
    rng = rng_for(ds.seed, table.project_id, table.kind, iid, "plan")
    # Hot entities get max(6K, 45) notes (more than a page of discussions); the others 0..~1.6K,
    # so the mean stays close to K.
    hot = iid % HOT_EVERY == 7 and k > 0
    remaining = max(6 * k, 45) if hot else rng.randint(0, (19 * k) // 12)
    remaining = min(remaining, MAX_NOTES)
    shapes: list[Shape] = []
    while remaining > 0:
        roll = rng.random()
        if roll < 0.25:
            shape = Shape("system", 1)
        elif roll < 0.6:
            shape = Shape("individual", 1)
        elif table.kind == "mr" and roll < 0.8:
            shape = Shape("diff", min(remaining, rng.randint(1, 4)))
        else:
            shape = Shape("thread", min(remaining, rng.randint(2, 4)))
        shapes.append(shape)
        remaining -= shape.notes
    if very_hot(table, iid) and k > 0:
        shapes += [Shape("individual", 1)] * VERY_HOT_EXTRA
    plan = tuple(shapes)
    ds.plan_cache[key] = plan
    return plan


def user_note_count(ds: Dataset, table: EntityTable, iid: int) -> int:
    """``user_notes_count``: non-system notes, generated plus added by mutations, minus deleted."""
    overlay = table.overlays.get(iid)
    if overlay is not None and overlay.deleted_notes:
        return sum(1 for d in discussions(ds, table, iid) for n in d["notes"] if not n["system"])
    count = sum(s.notes for s in note_plan(ds, table, iid) if s.kind != "system")
    if overlay is not None:
        count += sum(1 for d in overlay.discussions for n in d["notes"] if not n["system"])
    return count


def discussions(ds: Dataset, table: EntityTable, iid: int) -> list[dict[str, Any]]:
    """All discussions, oldest first, each with all of its notes (as GitLab embeds them)."""
    out = curated_discussions(ds, table, iid, build_note)
    if out is None:
        out = _generated(ds, table, iid)
    overlay = table.overlays.get(iid)
    if overlay is not None:
        out.extend(overlay.discussions)
        if overlay.deleted_notes:
            out = _without(out, overlay.deleted_notes)
    return out


def _generated(ds: Dataset, table: EntityTable, iid: int) -> list[dict[str, Any]]:
    """The discussions of ``note_plan``, generated from the seed."""
    plan = note_plan(ds, table, iid)
    rng = rng_for(ds.seed, table.project_id, table.kind, iid, "notes")
    created, updated = table.created[iid], max(table.created[iid], table.base_updated[iid])
    total = sum(s.notes for s in plan)
    times = sorted(rng.randint(created, updated) for _ in range(total))
    files = diff_files(ds, table.project_id, iid) if table.kind == "mr" else []
    n_issues = ds.table(table.project_id, "issue").seeded or 1
    out: list[dict[str, Any]] = []
    k = 0
    for index, shape in enumerate(plan):
        position = _position(rng, ds, table.project_id, iid, files) if shape.kind == "diff" else None
        resolved = shape.kind in ("diff", "thread") and table.kind == "mr" and rng.random() < 0.4
        notes = []
        for _ in range(shape.notes):
            at = times[k]
            body = _body(rng, table.kind, shape.kind, n_issues)
            author = rng.randint(2, USER_COUNT)
            if shape.kind != "system" and rng.random() < GHOST_NOTE_SHARE:
                author = GHOST_USER_ID
            notes.append(
                build_note(
                    ds,
                    table,
                    iid,
                    note_id=table.gid(iid) * 256 + k,
                    at=at,
                    author=author,
                    body=body,
                    kind=shape.kind,
                    position=position,
                    resolved_by=(rng.randint(2, USER_COUNT), times[-1]) if resolved else None,
                )
            )
            k += 1
        out.append(
            {
                "id": sha1_hex(f"{ds.seed}:{table.project_id}:{table.kind}:{iid}:discussion:{index}"),
                "individual_note": shape.kind in ("system", "individual"),
                "notes": notes,
            }
        )
    return out


def _without(found: list[dict[str, Any]], deleted: set[int]) -> list[dict[str, Any]]:
    """Discussions minus deleted notes; a discussion left with no note is gone (as on GitLab)."""
    out = []
    for discussion in found:
        notes = [n for n in discussion["notes"] if n["id"] not in deleted]
        if notes:
            same = len(notes) == len(discussion["notes"])
            out.append(discussion if same else {**discussion, "notes": notes})
    return out


def build_note(
    ds: Dataset,
    table: EntityTable,
    iid: int,
    *,
    note_id: int,
    at: int,
    author: int,
    body: str,
    kind: ShapeKind,
    position: dict[str, Any] | None = None,
    resolved_by: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """One note with exactly the keys of GitLab's note entity (DiffNotes add commit_id/position)."""
    stamp = ms_to_iso(at)
    note: dict[str, Any] = {
        "id": note_id,
        "type": {"diff": "DiffNote", "thread": "DiscussionNote"}.get(kind),
        "body": body,
        "attachment": None,
        "author": ds.user(author),
        "created_at": stamp,
        "updated_at": stamp,
        "system": kind == "system",
        "noteable_id": table.gid(iid),
        "noteable_type": "Issue" if table.kind == "issue" else "MergeRequest",
        "noteable_iid": iid,
        "confidential": False,
        "internal": False,
        "commands_changes": {},
    }
    if table.kind == "mr" and kind in ("diff", "thread"):
        note["resolvable"] = True
        note["resolved"] = resolved_by is not None
        note["resolved_by"] = ds.user(resolved_by[0]) if resolved_by else None
        note["resolved_at"] = ms_to_iso(resolved_by[1]) if resolved_by else None
    else:
        note["resolvable"] = False
    if position is not None:
        note["commit_id"] = position["head_sha"]
        note["position"] = position
    return note


def _body(rng: Any, entity_kind: str, shape_kind: ShapeKind, n_issues: int) -> str:
    if shape_kind == "system":
        template = rng.choice(_ISSUE_SYSTEM if entity_kind == "issue" else _MR_SYSTEM)
    else:
        template = rng.choice(_REMARKS)
    return str(
        template.format(
            u=f"user{rng.randint(2, USER_COUNT)}",
            n=rng.randint(1, n_issues),
            w=rng.choice(_WORDS),
            d="2025-01-31",
        )
    )


def _position(
    rng: Any, ds: Dataset, project_id: int, iid: int, files: list[dict[str, Any]]
) -> dict[str, Any]:
    """A text DiffNote position (API-NOTES §1.6) on one of the MR's changed files."""
    f = rng.choice(files)
    header = f["diff"].split(" ")  # "@@ -a,b +c,d @@"
    old_start, new_start = int(header[1][1:].split(",")[0]), int(header[2][1:].split(",")[0])
    old_line: int | None = old_start
    new_line: int | None = new_start
    if f["deleted_file"]:
        new_line = None
    elif f["new_file"]:
        old_line = None
    code = line_code(f["new_path"], old_line or new_line or 1, new_line or old_line or 1)
    point = {
        "line_code": code,
        "type": "new" if new_line else "old",
        "old_line": old_line,
        "new_line": new_line,
    }
    return {
        **mr_shas(ds.seed, project_id, iid),
        "old_path": f["old_path"],
        "new_path": f["new_path"],
        "position_type": "text",
        "old_line": old_line,
        "new_line": new_line,
        "line_range": {"start": point, "end": dict(point)},
    }
