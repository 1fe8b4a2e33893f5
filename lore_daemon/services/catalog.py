"""Every JSON-RPC method the daemon serves, in one list (the server registers exactly these)."""

from __future__ import annotations

from lore_daemon.services import (
    get,
    preflight,
    robot_docs,
    search,
    status,
    sync_runs,
    sync_standard,
    sync_surgical,
)
from lore_daemon.services import list as list_
from lore_daemon.services.spec import MethodSpec

METHODS: tuple[MethodSpec, ...] = (
    preflight.SPEC,
    sync_surgical.SPEC,
    sync_runs.SPEC,
    sync_standard.SPEC,
    status.SPEC,
    robot_docs.SPEC,
    get.SPEC,
    list_.SPEC,
    search.SPEC,
)
