"""``make demo``: the simulator, the daemon and the ``lore`` bridge, end to end, in one minute.

Starts the bundled GitLab simulator on loopback with a seeded project, writes a throwaway config,
then drives the daemon through the bridge: a preflight, a surgical sync that names one missing
issue (to show the aggregated failure and its recovery actions), the same sync without it, the
run ledger, a sync of the curated project's realistic text (embedded by the bundled model) and the
status with the embedding provider and its vectors. Everything, the shared daemon's socket
included, lives in a temporary directory that is removed at the end (the daemon is stopped first).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = "group/project"


def _banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def _lore(env: dict[str, str], *args: str) -> int:
    cmd = [sys.executable, "-m", "lore_client.bridge", "--json", "--progress", *args]
    print("$ lore " + " ".join(args), flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    for line in proc.stderr.splitlines():
        print(f"  progress {line}")
    payload = proc.stdout.strip()
    if payload:
        print(json.dumps(json.loads(payload), indent=2))
    print(f"(exit code {proc.returncode})", flush=True)
    return proc.returncode


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="lore-demo-") as tmp:
        sim = subprocess.Popen(
            [sys.executable, "-m", "lore_daemon.sim", "--port", "0", "--seed", "7",
             "--issues", "300", "--mrs", "80", "--latency-ms", "20", "--corpus"],
            stdout=subprocess.PIPE, text=True,
        )
        env: dict[str, str] | None = None
        try:
            assert sim.stdout is not None
            info = json.loads(sim.stdout.readline())
            _banner(f"GitLab simulator at {info['base_url']} (300 issues, 80 MRs, 20 ms latency)")
            config = Path(tmp) / "config.toml"
            config.write_text(
                f'[gitlab]\nbase_url = "{info["base_url"]}"\ntoken_env = "LORE_DEMO_TOKEN"\n\n'
                f'[[projects]]\npath = "{PROJECT}"\n\n[storage]\ndb_path = "{tmp}/lore.db"\n'
            )
            # A shared daemon of its own: the first call starts it, the others reuse it warm.
            env = dict(os.environ, LORE_CONFIG_PATH=str(config), LORE_DEMO_TOKEN=info["token"],
                       LORE_SOCKET=f"{tmp}/daemon.sock")
            env.pop("LORE_DB_PATH", None)

            _banner("1. Preflight: auth and every target checked remotely, nothing written")
            _lore(env, "sync", "--preflight-only", "-p", PROJECT, "--issue", "1", "--issue", "2", "--mr", "1")
            _banner("2. Surgical sync naming a missing issue: aggregated failure, no content written")
            _lore(env, "sync", "-p", PROJECT, "--issue", "1", "--issue", "2", "--issue", "99999", "--mr", "1")
            _banner("3. The same sync without it: primaries, dependents, documents")
            _lore(env, "sync", "-p", PROJECT, "--issue", "1", "--issue", "2", "--mr", "1",
                  "--ref", f"{PROJECT}#3", "--ref", "!2")
            _banner("4. Dry run: zero network calls, local state of each target")
            _lore(env, "sync", "--dry-run", "-p", PROJECT, "--issue", "1", "--issue", "4")
            _banner("5. The run ledger, newest first")
            _lore(env, "sync-runs", "--limit", "5")
            _banner("6. Realistic text (acme/brightday), embedded by the bundled model on the CPU")
            _lore(env, "sync", "-p", "acme/brightday", "--issue", "1", "--issue", "4", "--issue", "13",
                  "--mr", "1")
            _banner("7. Status: embedding provider, model, documents with current vectors")
            _lore(env, "status")
        finally:
            if env is not None:
                subprocess.run([sys.executable, "-m", "lore_client.bridge", "daemon", "stop"],
                               env=env, capture_output=True, check=False)
            sim.terminate()
            sim.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
