"""Replace-all upserts written from one column list.

Most mirror tables take GitLab's latest version of a row whole: ``INSERT (columns) ... ON
CONFLICT (key) DO UPDATE SET c = excluded.c`` for every non-key column. Writing that by hand
lists each column two or three times, and the lists drift apart when a column is added. Here a
statement is declared once, as a table, its columns (in row-tuple order) and its conflict key;
the SQL is derived from them. Names are code constants checked against a strict pattern; values
only ever travel as ``?`` parameters.

Upserts with other rules (``coalesce`` merges for users and milestones, the job queue's
reset-on-newer-version, the dirty queue's timestamp) stay hand-written where they are used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Upsert:
    """One table's replace-all upsert.

    ``only_if_changed`` adds ``WHERE (cols) IS NOT (excluded.cols)``, so an identical row is not
    rewritten (no page write, no ``changes()``), which the full-refresh writers use to tell
    whether anything changed. ``returning`` is appended verbatim (e.g. ``"id, gitlab_id"``).
    """

    table: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    only_if_changed: bool = False
    returning: str = ""
    head: str = field(init=False)
    tail: str = field(init=False)
    sql: str = field(init=False)

    def __post_init__(self) -> None:
        for name in (self.table, *self.columns, *self.key):
            if not _NAME.match(name):
                raise ValueError(f"not a plain SQL identifier: {name!r}")
        if not set(self.key) <= set(self.columns):
            raise ValueError(f"{self.table}: conflict key {self.key} not among the columns")
        updated = [c for c in self.columns if c not in self.key]
        if not updated:
            raise ValueError(f"{self.table}: nothing to update besides the key")
        tail = f"ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET " + ", ".join(
            f"{c} = excluded.{c}" for c in updated
        )
        if self.only_if_changed:
            mine = ", ".join(updated)
            theirs = ", ".join(f"excluded.{c}" for c in updated)
            tail += f" WHERE ({mine}) IS NOT ({theirs})"
        if self.returning:
            tail += f" RETURNING {self.returning}"
        head = f"INSERT INTO {self.table} ({', '.join(self.columns)})"
        values = "VALUES (" + ", ".join("?" * len(self.columns)) + ")"
        object.__setattr__(self, "head", head)
        object.__setattr__(self, "tail", tail)
        object.__setattr__(self, "sql", f"{head} {values} {tail}")
