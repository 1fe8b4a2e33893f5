"""Mutations of the seeded truth, as GitLab would record them (for mid-run changes in tests).

Stamps come from the simulator's clock (``SimClock``). What moves a parent's ``updated_at`` follows
GitLab (API-NOTES §5.5):

* attribute saves (``bump``, close/reopen, creation) always do, to a time strictly later than before;
* a new note or a label change goes through ``ThrottledTouch``: the parent is touched only when its
  ``updated_at`` is more than ``TOUCH_INTERVAL_MS`` old, else it keeps its old value while the
  note or event carries the new time;
* deleting a note never touches the parent.

``late_commit`` models §5b: a change stamped before it became visible, so it appears with an
``updated_at`` older than items a sync may already have listed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lore_daemon.errors import InvalidParamsError
from lore_daemon.sim.clock import SimClock
from lore_daemon.sim.data import Dataset, EntityTable, Kind, Overlay, sha1_hex
from lore_daemon.sim.events import MUTATION_EVENT_ID_BASE, label_event, state_event
from lore_daemon.sim.notes import build_note, discussions
from lore_daemon.timeutil import ms_to_iso

ADDED_NOTE_ID_BASE = 2_000_000_000
TOUCH_INTERVAL_MS = 60_000  # ThrottledTouch::TOUCH_INTERVAL (gitlabhq app/models/concerns/throttled_touch.rb)


class Mutator:
    """Applies named mutation ops; ``apply(op, args)`` is what the control API calls."""

    def __init__(self, ds: Dataset, clock: SimClock) -> None:
        self.ds = ds
        self.clock = clock
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
            "delete_note": self.delete_note,
            "create": self.create,
            "late_commit": self.late_commit,
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
        """A new individual-note discussion; the parent is touched as ``Note#touch_noteable`` does
        (throttled: ``touched`` in the result says whether its ``updated_at`` moved)."""
        table = self._table(project, kind, iid)
        at = self.clock.now_ms()
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
        touched = self._throttled_touch(table, iid, at)
        return {
            **self._result(table, iid, updated=table.updated[iid]),
            "touched": touched,
            "note_id": note["id"],
            "discussion_id": discussion["id"],
            "created_at": ms_to_iso(at),
        }

    def delete_note(self, project: str | int, kind: Kind, iid: int, note_id: int) -> dict[str, Any]:
        """Remove a note (generated or added); the parent's ``updated_at`` does not move."""
        table = self._table(project, kind, iid)
        known = {n["id"] for d in discussions(self.ds, table, iid) for n in d["notes"]}
        if note_id not in known:
            raise _bad(f"{kind} {iid} has no note {note_id!r}", note_id=note_id)
        self._overlay(table, iid).deleted_notes.add(note_id)
        return {**self._result(table, iid, updated=table.updated[iid]), "touched": False}

    def create(self, project: str | int, kind: Kind) -> dict[str, Any]:
        """A new issue or MR (state ``opened``), created and updated now."""
        table = self._new_table(project, kind)
        at = self.clock.now_ms()
        iid = table.append(at, "opened")
        return self._result(table, iid, updated=at)

    def late_commit(
        self, project: str | int, kind: Kind, iid: int | None = None, lag_ms: int = 5_000
    ) -> dict[str, Any]:
        """A change stamped ``lag_ms`` before now that only becomes visible now (API-NOTES §5b).

        With ``iid`` the entity is updated (its ``updated_at`` still only moves forward); without,
        a new one is created. ``late`` in the result says whether another visible entity of the
        same kind already has a later ``updated_at`` (i.e. a sync may have listed past it).
        """
        if not isinstance(lag_ms, int) or lag_ms < 1:
            raise _bad("lag_ms must be a positive integer", lag_ms=lag_ms)
        at = self.clock.now_ms() - lag_ms
        if iid is None:
            table = self._new_table(project, kind)
            iid = table.append(at, "opened")
        else:
            table = self._table(project, kind, iid)
            if at <= table.updated[iid]:
                raise _bad(
                    f"{kind} {iid} was updated at {ms_to_iso(table.updated[iid])}, after the late stamp "
                    f"{ms_to_iso(at)}; use a smaller lag_ms",
                    lag_ms=lag_ms,
                )
            self._set_updated(table, iid, at)
        newer = any(table.updated[i] > at for i in range(1, table.count + 1) if table.visible(i) and i != iid)
        return {**self._result(table, iid, updated=at), "late": newer}

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
        """Label added + label event; the parent is touched through ``ThrottledTouch``."""
        table = self._table(project, kind, iid)
        known = {lab["name"]: lab for lab in self.ds.labels[table.project_id]}
        if label not in known:
            raise _bad(f"unknown label {label!r}", label=label)
        at = self.clock.now_ms()
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
        touched = self._throttled_touch(table, iid, at)
        return {**self._result(table, iid, updated=table.updated[iid]), "touched": touched}

    # --- helpers ----------------------------------------------------------------------------

    def _new_table(self, project: str | int, kind: str) -> EntityTable:
        table = self._project_table(project, kind)
        if table.count + 1 >= 1_000_000:
            raise _bad(f"{kind} table of {project} is full")
        return table

    def _project_table(self, project: str | int, kind: str) -> EntityTable:
        found = self.ds.find_project(str(project))
        if found is None:
            raise _bad(f"no project {project!r}", project=project)
        if kind not in ("issue", "mr"):
            raise _bad(f"kind must be 'issue' or 'mr', not {kind!r}", kind=kind)
        return self.ds.table(found.id, "issue" if kind == "issue" else "mr")

    def _table(self, project: str | int, kind: str, iid: Any, *, allow_hidden: bool = False) -> EntityTable:
        table = self._project_table(project, kind)
        found = self.ds.projects[table.project_id]
        if not isinstance(iid, int) or not 1 <= iid <= table.count:
            raise _bad(f"no {kind} with iid {iid!r} in {found.path_with_namespace}", iid=iid)
        if iid in table.hidden and not allow_hidden:
            raise _bad(f"{kind} {iid} is hidden", iid=iid)
        return table

    def _overlay(self, table: EntityTable, iid: int) -> Overlay:
        return table.overlays.setdefault(iid, Overlay())

    def _next_time(self, table: EntityTable, iid: int) -> int:
        """An attribute save's stamp: now, strictly later than the entity's last update."""
        return max(self.clock.now_ms(), table.updated[iid] + 1)

    def _throttled_touch(self, table: EntityTable, iid: int, at: int) -> bool:
        """``ThrottledTouch#touch``: only when ``updated_at`` is more than a minute older than ``at``."""
        if at - table.updated[iid] <= TOUCH_INTERVAL_MS:
            return False
        self._set_updated(table, iid, at)
        return True

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
