"""Mutations of the seeded truth, as GitLab would record them (for mid-run changes in tests).

Every change bumps the entity's ``updated_at`` to a time strictly later than before (now, or
the old value + 1 ms if the clock is behind), like ``Note#touch_noteable`` and state changes do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lore_daemon.errors import InvalidParamsError
from lore_daemon.sim.data import Dataset, EntityTable, Kind, Overlay, sha1_hex
from lore_daemon.sim.events import MUTATION_EVENT_ID_BASE, label_event, state_event
from lore_daemon.sim.notes import build_note
from lore_daemon.timeutil import ms_to_iso, now_ms

ADDED_NOTE_ID_BASE = 2_000_000_000


class Mutator:
    """Applies named mutation ops; ``apply(op, args)`` is what the control API calls."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self._note_seq = 0
        self._event_seq = {"state": 0, "label": 0}
        self._ops: dict[str, Callable[..., dict[str, Any]]] = {
            "bump_issue": lambda project, iid: self.bump(project, "issue", iid),
            "bump_mr": lambda project, iid: self.bump(project, "mr", iid),
            "bump": self.bump,
            "add_note": self.add_note,
            "close_issue": lambda project, iid: self.set_closed(project, iid, closed=True),
            "reopen_issue": lambda project, iid: self.set_closed(project, iid, closed=False),
            "hide_issue": lambda project, iid: self.set_hidden(project, "issue", iid, hidden=True),
            "unhide_issue": lambda project, iid: self.set_hidden(project, "issue", iid, hidden=False),
            "hide_mr": lambda project, iid: self.set_hidden(project, "mr", iid, hidden=True),
            "unhide_mr": lambda project, iid: self.set_hidden(project, "mr", iid, hidden=False),
            "add_label": self.add_label,
        }

    @property
    def op_names(self) -> list[str]:
        return sorted(self._ops)

    def apply(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        handler = self._ops.get(op)
        if handler is None:
            raise _bad(f"unknown mutation op {op!r}; known: {', '.join(self.op_names)}", op=op)
        try:
            return handler(**args)
        except TypeError as exc:  # wrong or missing arguments for the op
            raise _bad(f"bad arguments for {op}: {exc}", op=op) from exc

    # --- ops --------------------------------------------------------------------------------

    def bump(self, project: str | int, kind: Kind, iid: int) -> dict[str, Any]:
        table = self._table(project, kind, iid)
        return self._result(table, iid, updated=self._touch(table, iid))

    def add_note(
        self, project: str | int, kind: Kind, iid: int, body: str, author: int = 1
    ) -> dict[str, Any]:
        """A new individual-note discussion; bumps the parent like ``Note#touch_noteable``."""
        table = self._table(project, kind, iid)
        at = self._next_time(table, iid)
        self._note_seq += 1
        note = build_note(
            self.ds,
            table,
            iid,
            note_id=ADDED_NOTE_ID_BASE + self._note_seq,
            at=at,
            author=author,
            body=body,
            kind="individual",
        )
        discussion = {
            "id": sha1_hex(f"{self.ds.seed}:added-discussion:{self._note_seq}"),
            "individual_note": True,
            "notes": [note],
        }
        self._overlay(table, iid).discussions.append(discussion)
        self._set_updated(table, iid, at)
        return {
            **self._result(table, iid, updated=at),
            "note_id": note["id"],
            "discussion_id": discussion["id"],
        }

    def set_closed(self, project: str | int, iid: int, *, closed: bool) -> dict[str, Any]:
        """Close or reopen an issue: state change + resource_state_event + bump."""
        table = self._table(project, "issue", iid)
        wanted = "closed" if closed else "opened"
        if table.state[iid] == wanted:
            return self._result(table, iid, updated=table.updated[iid], changed=False)
        at = self._next_time(table, iid)
        overlay = self._overlay(table, iid)
        overlay.closure_set = True
        overlay.closed_at, overlay.closed_by = (at, 1) if closed else (None, None)
        self._event_seq["state"] += 1
        overlay.state_events.append(
            state_event(
                self.ds,
                table,
                iid,
                event_id=MUTATION_EVENT_ID_BASE + self._event_seq["state"],
                user=1,
                at=at,
                state="closed" if closed else "reopened",
            )
        )
        table.state[iid] = wanted
        self._set_updated(table, iid, at)
        return self._result(table, iid, updated=at)

    def set_hidden(self, project: str | int, kind: Kind, iid: int, *, hidden: bool) -> dict[str, Any]:
        """Make an entity invisible to the token (GitLab answers 404) or visible again."""
        table = self._table(project, kind, iid, allow_hidden=True)
        (table.hidden.add if hidden else table.hidden.discard)(iid)
        table.invalidate()
        return self._result(table, iid, updated=table.updated[iid])

    def add_label(self, project: str | int, kind: Kind, iid: int, label: str) -> dict[str, Any]:
        table = self._table(project, kind, iid)
        known = {lab["name"]: lab for lab in self.ds.labels[table.project_id]}
        if label not in known:
            raise _bad(f"unknown label {label!r}", label=label)
        at = self._next_time(table, iid)
        overlay = self._overlay(table, iid)
        overlay.labels_added.append(label)
        self._event_seq["label"] += 1
        overlay.label_events.append(
            label_event(
                self.ds,
                table,
                iid,
                event_id=MUTATION_EVENT_ID_BASE + self._event_seq["label"],
                user=1,
                at=at,
                label=known[label],
                action="add",
            )
        )
        self._set_updated(table, iid, at)
        return self._result(table, iid, updated=at)

    # --- helpers ----------------------------------------------------------------------------

    def _table(self, project: str | int, kind: str, iid: Any, *, allow_hidden: bool = False) -> EntityTable:
        found = self.ds.find_project(str(project))
        if found is None:
            raise _bad(f"no project {project!r}", project=project)
        if kind not in ("issue", "mr"):
            raise _bad(f"kind must be 'issue' or 'mr', not {kind!r}", kind=kind)
        table = self.ds.table(found.id, "issue" if kind == "issue" else "mr")
        if not isinstance(iid, int) or not 1 <= iid <= table.count:
            raise _bad(f"no {kind} with iid {iid!r} in {found.path_with_namespace}", iid=iid)
        if iid in table.hidden and not allow_hidden:
            raise _bad(f"{kind} {iid} is hidden", iid=iid)
        return table

    def _overlay(self, table: EntityTable, iid: int) -> Overlay:
        return table.overlays.setdefault(iid, Overlay())

    @staticmethod
    def _next_time(table: EntityTable, iid: int) -> int:
        return max(now_ms(), table.updated[iid] + 1)

    def _touch(self, table: EntityTable, iid: int) -> int:
        at = self._next_time(table, iid)
        self._set_updated(table, iid, at)
        return at

    @staticmethod
    def _set_updated(table: EntityTable, iid: int, at: int) -> None:
        table.updated[iid] = at
        table.invalidate()

    def _result(self, table: EntityTable, iid: int, *, updated: int, changed: bool = True) -> dict[str, Any]:
        return {
            "project_id": table.project_id,
            "kind": table.kind,
            "iid": iid,
            "id": table.gid(iid),
            "state": table.state[iid],
            "updated_at": ms_to_iso(updated),
            "changed": changed,
        }


def _bad(message: str, **details: Any) -> InvalidParamsError:
    return InvalidParamsError(
        message, "INVALID_PARAMS", "Check the mutation's op and arguments.", details=details
    )
