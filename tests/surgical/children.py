"""Child processes of the surgical tests: other daemons on the same database file."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def child_line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    text = proc.stdout.readline()
    if not text:
        raise AssertionError(f"child exited early (code {proc.wait()})")
    decoded: dict[str, Any] = json.loads(text)
    return decoded


@contextmanager
def lock_held_by_another_process(db_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "lock_holder.py"), str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        held = child_line(proc)
        assert held["event"] == "held"
        yield proc, int(held["pid"])
        if proc.poll() is None:  # still holding: let go cleanly, as a daemon finishing its run would
            assert proc.stdin is not None
            proc.stdin.write("release\n")
            proc.stdin.flush()
            assert child_line(proc)["event"] == "released"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
