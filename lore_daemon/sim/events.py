"""Resource state/label/milestone events of an issue or MR (API-NOTES §1.7).

Ids are unique per event kind: generated ones are ``gid * slots + k`` with room per entity;
events created by mutations take ids from a per-kind counter far above that range. Lists are in
id order, which is also time order.

As on any long-lived GitLab: some events belong to deleted users (GitLab moves them to its
"Ghost User"), a label added and removed again may since have been deleted (``label: null``), and
the entities of ``notes.very_hot`` carry more than 100 label events (several pages at
``per_page=100``).
"""

from __future__ import annotations

from typing import Any, Literal

from lore_daemon.sim.data import GHOST_USER_ID, USER_COUNT, Dataset, EntityTable, rng_for
from lore_daemon.sim.entities import Entities
from lore_daemon.sim.notes import very_hot
from lore_daemon.timeutil import ms_to_iso

EventKind = Literal["state", "label", "milestone"]
EVENT_KINDS: tuple[EventKind, ...] = ("state", "label", "milestone")
_SLOTS = {"state": 8, "label": 128, "milestone": 4}
VERY_HOT_LABEL_PAIRS = 55  # add/remove pairs: 110 label events, two pages at per_page=100
GHOST_SHARE = 0.06  # events whose author was deleted since
MUTATION_EVENT_ID_BASE = 900_000_000


def _event(ds: Dataset, table: EntityTable, iid: int, *, event_id: int, user: int, at: int) -> dict[str, Any]:
    return {
        "id": event_id,
        "user": ds.user(user),
        "created_at": ms_to_iso(at),
        "resource_type": "Issue" if table.kind == "issue" else "MergeRequest",
        "resource_id": table.gid(iid),
    }


def state_event(
    ds: Dataset, table: EntityTable, iid: int, *, event_id: int, user: int, at: int, state: str
) -> dict[str, Any]:
    return {
        **_event(ds, table, iid, event_id=event_id, user=user, at=at),
        "state": state,
        "source_commit": None,
        "source_merge_request_id": None,
    }


def label_event(
    ds: Dataset,
    table: EntityTable,
    iid: int,
    *,
    event_id: int,
    user: int,
    at: int,
    label: dict[str, Any] | None,
    action: str,
) -> dict[str, Any]:
    return {**_event(ds, table, iid, event_id=event_id, user=user, at=at), "label": label, "action": action}


def resource_events(ents: Entities, table: EntityTable, iid: int, kind: EventKind) -> list[dict[str, Any]]:
    """Every event of one kind for one entity, generated then added by mutations."""
    ds = ents.ds
    rng = rng_for(ds.seed, table.project_id, table.kind, iid, f"events-{kind}")
    created, updated = table.created[iid], max(table.created[iid], table.base_updated[iid])
    traits = ents.traits(table, iid)
    base = table.gid(iid) * _SLOTS[kind]
    # (time, payload-maker) pairs, sorted by time so ids rise with time.
    items: list[tuple[int, dict[str, Any]]] = []
    if iid > table.seeded:  # created by a mutation: only what happened to it since
        pass
    elif kind == "state":
        final: list[tuple[int, str]] = []
        end = traits.closed_at if traits.closed_at is not None else updated
        if rng.random() < 0.15 and end > created + 2:
            t1 = rng.randint(created + 1, end - 1)
            final += [(t1, "closed"), (rng.randint(t1, end - 1), "reopened")]
        state = table.base_state[iid]
        if state in ("merged", "closed") and traits.closed_at is not None:
            final.append((traits.closed_at, state))
        for k, (at, value) in enumerate(final):
            items.append(
                (at, state_event(ds, table, iid, event_id=base + k, user=traits.closer, at=at, state=value))
            )
    elif kind == "label":
        labels = {label["name"]: label for label in ds.labels[table.project_id]}
        first = min(updated, created + 60_000)
        changes: list[tuple[int, str, str, bool]] = [  # (time, label, action, deleted since)
            (rng.randint(created, first), name, "add", False) for name in traits.labels
        ]
        pairs = VERY_HOT_LABEL_PAIRS if very_hot(table, iid) else (1 if rng.random() < 0.3 else 0)
        for _ in range(pairs):
            extra = rng.choice([n for n in labels if n not in traits.labels])
            gone = rng.random() < 0.3  # the label was deleted later: GitLab now shows label null
            t1 = rng.randint(created, updated)
            changes += [(t1, extra, "add", gone), (rng.randint(t1, updated), extra, "remove", gone)]
        changes.sort(key=lambda c: c[0])
        for k, (at, name, action, gone) in enumerate(changes):
            user = rng.randint(2, USER_COUNT)
            if rng.random() < GHOST_SHARE:
                user = GHOST_USER_ID
            items.append(
                (
                    at,
                    label_event(
                        ds,
                        table,
                        iid,
                        event_id=base + k,
                        user=user,
                        at=at,
                        label=None if gone else labels[name],
                        action=action,
                    ),
                )
            )
    else:
        milestones = ds.milestones[table.project_id]
        changes_m: list[tuple[int, int, str]] = []
        if traits.milestone is not None:
            if rng.random() < 0.2:
                old = (traits.milestone + 1) % len(milestones)
                t1 = rng.randint(created, updated)
                changes_m += [(t1, old, "add"), (rng.randint(t1, updated), old, "remove")]
            changes_m.append((rng.randint(created, updated), traits.milestone, "add"))
        changes_m.sort(key=lambda c: c[0])
        for k, (at, index, action) in enumerate(changes_m):
            items.append(
                (
                    at,
                    {
                        **_event(ds, table, iid, event_id=base + k, user=rng.randint(2, USER_COUNT), at=at),
                        "milestone": milestones[index],
                        "action": action,
                    },
                )
            )
    out = [payload for _, payload in items]
    overlay = table.overlays.get(iid)
    if overlay is not None:
        out.extend(
            overlay.state_events if kind == "state" else overlay.label_events if kind == "label" else []
        )
    return out
