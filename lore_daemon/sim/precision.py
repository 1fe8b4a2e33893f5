"""Microsecond timestamps (``SimControl.set_option("microsecond_timestamps", True)``).

GitLab keeps microseconds in its database and its API normally shows milliseconds
(``…T09:09:56.690Z``, API-NOTES §1.0, §5.4); some payloads and versions carry all six digits. With
the knob on, notes and resource events (never the issue/MR timestamps that lists filter on, so
list semantics stay exact) are stamped ``…T09:09:56.690123Z``: the sub-millisecond digits are
derived from the object's id, so the same object always shows the same value, and reading them
back with millisecond precision gives the original time.
"""

from __future__ import annotations

import re
from typing import Any

_STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3})Z$")
_KEYS = ("created_at", "updated_at", "resolved_at")


def _micro(value: Any, salt: int) -> Any:
    if not isinstance(value, str):
        return value
    found = _STAMP.match(value)
    if found is None:
        return value
    return f"{found.group(1)}{(salt * 7919) % 1000:03d}Z"


def _stamp(obj: dict[str, Any]) -> dict[str, Any]:
    ident = obj.get("id")
    salt = ident if isinstance(ident, int) else 1
    out = {k: _micro(v, salt) if k in _KEYS else v for k, v in obj.items()}
    if isinstance(out.get("notes"), list):
        out["notes"] = [_stamp(n) for n in out["notes"]]
    return out


def with_microseconds(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of discussions (their notes too) or events with microsecond timestamps."""
    return [_stamp(item) for item in items]
