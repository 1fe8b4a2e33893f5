"""The TOML config file tests write: one writer for every suite."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

# [sync] settings sized for tests: fast concurrency, lock timeouts that fail in seconds, not minutes.
TEST_SYNC = {"primary_concurrency": 8, "lock_timeout_ms": 10_000, "stale_lock_ms": 60_000}
# Embedding is off unless a test says otherwise: the tests about embeddings turn the real model
# on (``embedding='provider = "local"'``), the others stay fast.
EMBEDDING_OFF = 'provider = "none"'


def write_config(
    directory: Path,
    base_url: str,
    *,
    token_env: str,
    projects: tuple[str, ...] = (),
    db_path: Path | None = None,
    sync: Mapping[str, int] | None = None,
    embedding: str | None = EMBEDDING_OFF,
    extra: str = "",
) -> Path:
    """Write ``directory/config.toml`` for ``projects`` on the GitLab at ``base_url``. ``db_path``
    adds ``[storage]``, ``sync`` a ``[sync]`` table; ``embedding`` is the ``[embedding]`` table's
    lines (None: no table, the daemon's default, the local model); ``extra`` is appended verbatim
    (for tests of bad files). Returns the file's path."""
    lines = ["[gitlab]", f'base_url = "{base_url}"', f'token_env = "{token_env}"']
    for project in projects:
        lines += ["[[projects]]", f'path = "{project}"']
    if db_path is not None:
        lines += ["[storage]", f'db_path = "{db_path}"']
    if embedding is not None:
        lines += ["[embedding]", embedding]
    if sync:
        lines += ["[sync]", *(f"{key} = {value}" for key, value in sync.items())]
    if extra:
        lines.append(extra)
    path = directory / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
