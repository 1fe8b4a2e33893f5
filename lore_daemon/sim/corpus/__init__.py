"""A curated project for judging search by meaning: ``acme/brightday`` (project id 3).

The seeded projects' titles are templated ("Fix cache in the CLI"), useless for semantic search.
This project serves hand-written issues and merge requests of a plausible product — Brightday, a
day planner for iOS and Android with widgets, sync, reminders, a watch app, subscriptions — with
realistic titles, descriptions and comments, from the TOML files beside this module.

Switched on by ``SimConfig(corpus=True)`` (``--corpus`` on the command line). Everything but the
text is generated as for the other projects (timestamps, people, events, diffs), so payloads have
the same shape and validate against the same schemas. The hooks into the simulator are small:
``install`` adds the project to a ``Dataset``; ``curate_traits`` (entities.py) puts the text in;
``curated_note_count`` / ``curated_discussions`` (notes.py) serve the comments, one note per
discussion; notes.py adds (and deletes) the mutations' notes as for any other entity.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from lore_daemon.sim.config import ProjectSettings
from lore_daemon.sim.data import (
    DAY_MS,
    START_MS,
    USER_COUNT,
    Dataset,
    EntityTable,
    Kind,
    ProjectInfo,
    build_table,
    rng_for,
    sha1_hex,
)

CORPUS_PROJECT_ID = 3
CORPUS_PROJECT_PATH = "acme/brightday"
_GID_BASES: dict[Kind, int] = {"issue": 7_000_000, "mr": 8_000_000}
_FILES = ("issues_a.toml", "issues_b.toml", "mrs.toml")


@dataclass(frozen=True, slots=True)
class CuratedEntity:
    kind: Kind
    iid: int
    title: str
    description: str
    labels: tuple[str, ...]
    comments: tuple[str, ...]
    closes: tuple[int, ...]


@functools.cache
def entities() -> dict[tuple[Kind, int], CuratedEntity]:
    """Every curated issue and MR by (kind, iid); iids run 1..n without gaps per kind."""
    out: dict[tuple[Kind, int], CuratedEntity] = {}
    for name in _FILES:
        data = tomllib.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))
        for table, kind in (("issue", "issue"), ("mr", "mr")):
            for item in data.get(table, []):
                entity = CuratedEntity(
                    kind=kind,  # type: ignore[arg-type]
                    iid=int(item["iid"]),
                    title=str(item["title"]),
                    description=str(item["description"]).strip(),
                    labels=tuple(sorted(item.get("labels", []))),
                    comments=tuple(item.get("comments", [])),
                    closes=tuple(item.get("closes", [])),
                )
                out[(entity.kind, entity.iid)] = entity
    for kind in ("issue", "mr"):
        iids = sorted(i for k, i in out if k == kind)
        assert iids == list(range(1, len(iids) + 1)), f"curated {kind} iids must run 1..n"
    return out


def count(kind: Kind) -> int:
    return sum(1 for k, _ in entities() if k == kind)


def install(ds: Dataset) -> None:
    """Add the curated project (id 3) to a data set: project, settings, labels, milestones, entity
    tables."""
    ds.projects[CORPUS_PROJECT_ID] = ProjectInfo(
        CORPUS_PROJECT_ID, CORPUS_PROJECT_PATH, "brightday",
        "Brightday, a day planner for iOS and Android.", 12, None, START_MS - 40 * DAY_MS,
    )
    kinds: tuple[Kind, Kind] = ("issue", "mr")
    for kind in kinds:
        # Timestamps and states as generated for a project of this size; ids in their own block.
        table = build_table(ds.seed, 1, kind, count(kind))
        ds.tables[(CORPUS_PROJECT_ID, kind)] = dataclasses.replace(
            table, project_id=CORPUS_PROJECT_ID, gid_base=_GID_BASES[kind]
        )
    ds.settings[CORPUS_PROJECT_ID] = ProjectSettings()
    ds.labels[CORPUS_PROJECT_ID] = ds._labels(CORPUS_PROJECT_ID)
    ds.milestones[CORPUS_PROJECT_ID] = ds._milestones(CORPUS_PROJECT_ID)


def _curated(table: EntityTable, iid: int) -> CuratedEntity | None:
    if table.project_id != CORPUS_PROJECT_ID:
        return None
    return entities().get((table.kind, iid))


def curate_traits(table: EntityTable, iid: int, traits: Any) -> Any:
    """``traits`` with the curated text for a corpus entity; unchanged for any other."""
    entity = _curated(table, iid)
    if entity is None:
        return traits
    slug = "-".join(entity.title.lower().replace(":", "").split())[:40]
    closes = entity.closes if traits.target_branch == "main" else ()
    return dataclasses.replace(
        traits, title=entity.title, description=entity.description, labels=entity.labels, closes=closes,
        tasks=(0, 0), draft=entity.title.startswith("Draft:"), source_branch=f"{iid}-{slug}",
    )


def curated_note_count(table: EntityTable, iid: int) -> int | None:
    """How many (individual, non-system) notes a corpus entity has; None for any other."""
    entity = _curated(table, iid)
    return None if entity is None else len(entity.comments)


def curated_discussions(
    ds: Dataset, table: EntityTable, iid: int, build_note: Callable[..., dict[str, Any]]
) -> list[dict[str, Any]] | None:
    """A corpus entity's comments as discussions of one note each; None for any other entity.
    ``notes.discussions`` adds the mutations' (and removes deleted notes) as for any entity;
    ``build_note`` is notes.build_note (passed in: notes imports this module)."""
    entity = _curated(table, iid)
    if entity is None:
        return None
    rng = rng_for(ds.seed, table.project_id, table.kind, iid, "corpus-notes")
    created, updated = table.created[iid], max(table.created[iid], table.base_updated[iid])
    times = sorted(rng.randint(created, updated) for _ in entity.comments)
    out: list[dict[str, Any]] = []
    for k, (body, at) in enumerate(zip(entity.comments, times, strict=True)):
        note = build_note(
            ds, table, iid, note_id=table.gid(iid) * 256 + k, at=at, author=rng.randint(2, USER_COUNT),
            body=body, kind="individual",
        )
        key = f"{ds.seed}:{table.project_id}:{table.kind}:{iid}:discussion:{k}"
        out.append({"id": sha1_hex(key), "individual_note": True, "notes": [note]})
    return out
