"""Many small atomic units per commit: one SAVEPOINT each, a bounded group per transaction.

Both write loops of the standard sync (listed items in ``ingest``, dependent jobs in
``dependents``) need each unit to be all-or-nothing on its own, and both were dominated by the
commit: in WAL mode a commit writes every page the transaction touched, so committing per unit
rewrote the same table and index pages over and over (≈17 WAL frames per ingested item, about
half of the ingest phase's time). A savepoint is SQLite's nested transaction — "SAVEPOINTs are a
method of creating transactions, similar to BEGIN and COMMIT, except that [they] are named and
may be nested" — so each unit keeps its own transaction, and a bounded group of them
(``per_transaction`` units or ``budget_s`` of work, whichever comes first) shares one commit.

Failure rules, the same for every caller:

* a unit that raises rolls back alone (its savepoint); the units before it in the group are
  committed, then the error propagates — so what was done before a cancel or a bug stays, whole;
* ``should_stop()`` is asked before each unit; when it answers yes the group commits and the loop
  ends without error (the caller decides what stopping means);
* after each commit ``on_group_committed()`` runs; if the commit itself fails, nothing of that
  group stays and ``on_group_lost()`` runs instead, so the caller can forget the in-memory state
  (cursor walk, counters) those units had advanced.

Groups stay short (the write lock is held for at most ``budget_s``) so other processes' writers
and this process's lock heartbeat, which runs on the same writer thread between hops, get in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import apsw

T = TypeVar("T")


def write_in_groups(
    conn: apsw.Connection,
    units: Sequence[T],
    write_one: Callable[[T], None],
    *,
    per_transaction: int,
    budget_s: float,
    should_stop: Callable[[], bool] = lambda: False,
    on_group_committed: Callable[[], None] = lambda: None,
    on_group_lost: Callable[[], None] = lambda: None,
) -> int:
    """Run ``write_one(unit)`` for each unit in order, each in its own savepoint; returns how many
    completed (all committed). See the module docstring for the failure rules."""
    if per_transaction < 1:
        raise ValueError("per_transaction must be at least 1")
    position = 0
    while position < len(units):
        error: BaseException | None = None
        stopped = False
        done_in_group = 0
        deadline = time.monotonic() + budget_s
        try:
            with conn:
                for unit in units[position:position + per_transaction]:
                    if should_stop():
                        stopped = True
                        break
                    if done_in_group and time.monotonic() > deadline:
                        break
                    try:
                        with conn:  # this unit's savepoint: it alone rolls back
                            write_one(unit)
                    except BaseException as exc:  # re-raised once the units before it are committed
                        error = exc
                        break
                    done_in_group += 1
        except BaseException:
            on_group_lost()
            raise
        on_group_committed()
        position += done_in_group
        if error is not None:
            raise error
        if stopped:
            break
    return position
