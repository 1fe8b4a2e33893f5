"""The token never reaches the database, a log, a payload, an error or a notification.

One daemon at maximum verbosity is driven through every method, including failures (missing
targets, a foreign host, a rate-limited route, a rejected token) and a standard sync; then every
byte it wrote anywhere is searched for the token.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from lore_client.client import LoreClient
from lore_client.rpc import RpcError
from lore_daemon.sim import SimConfig, SimServer
from tests.support.config import write_config
from tests.support.sim import sim_fixture

TOKEN = "glpat-Zq7SECRETw9xK2mVb4Tn"


secret_sim = sim_fixture(
    SimConfig(seed=5, issues=15, mrs=5, notes_per_entity=3, token=TOKEN), name="secret_sim"
)


async def test_token_reaches_no_database_log_payload_error_or_notification(
    secret_sim: SimServer, tmp_path: Path
) -> None:
    db_path, log_path = tmp_path / "lore.db", tmp_path / "daemon.log"
    config = write_config(
        tmp_path, secret_sim.base_url, token_env="SECRET_GL_TOKEN", projects=("group/project",),
        db_path=db_path,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORE_")}
    env.update(LORE_CONFIG_PATH=str(config), SECRET_GL_TOKEN=TOKEN)
    seen: list[Any] = []
    notes: list[tuple[str, Any]] = []
    command = [sys.executable, "-m", "lore_daemon", "-vv", "--log-file", str(log_path)]
    secret_sim.control.add_fault(r"/issues/3/discussions", kind="rate_limit", retry_after=0.05, times=2)
    async with LoreClient.connect(command=command, env=env) as client:
        client._endpoint.add_notification_handler(lambda method, params: notes.append((method, params)))
        project = {"project": "group/project"}
        seen.append(await client.call("lore/preflight", {**project, "issues": [1, 999]}, dict))
        seen.append(await client.call("lore/syncSurgical", {**project, "issues": [2, 998]}, dict))
        seen.append(await client.call("lore/syncSurgical", {**project, "issues": [3]}, dict))
        foreign_url = {"issueUrls": ["https://evil.example/g/p/-/issues/1"]}
        with pytest.raises(RpcError) as foreign:
            await client.call("lore/syncSurgical", foreign_url, dict)
        seen.append(foreign.value.data)
        seen.append(await client.call("lore/sync", {}, dict))
        secret_sim.control.set_option("token_mode", "expired")
        seen.append(await client.call("lore/syncSurgical", {**project, "issues": [4]}, dict))
        for method in ("lore/syncRuns", "lore/status", "lore/robotDocs"):
            seen.append(await client.call(method, {}, dict))
    secret_sim.control.set_option("token_mode", "valid")

    assert any(m == "lore/progress" and "rate_limit" in json.dumps(p) for m, p in notes)
    assert any(m == "$/progress" for m, _ in notes)
    assert TOKEN not in json.dumps(seen) + json.dumps(notes)
    for path in (db_path, Path(f"{db_path}-wal"), log_path):
        if path.exists():
            assert TOKEN.encode() not in path.read_bytes(), path.name
    assert log_path.stat().st_size > 0  # the daemon really logged, at debug level
    # Every request the daemon made went to the configured simulator, with the token.
    assert all(entry["has_token"] for entry in secret_sim.control.log())
