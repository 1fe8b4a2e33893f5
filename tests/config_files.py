"""The TOML config file the engine tests write: one builder for the sync and surgical suites."""

from __future__ import annotations

from pathlib import Path


def write_config(
    tmp_path: Path,
    base_url: str,
    *,
    token_env: str,
    projects: tuple[str, ...],
    db_path: Path | None = None,
    embedding: str = 'provider = "none"',
    **sync: int,
) -> Path:
    """``tmp_path/config.toml`` for ``projects`` on the GitLab at ``base_url``; ``sync`` overrides
    the ``[sync]`` settings (fast primary concurrency, lock timeouts sized for tests). Embedding is
    off unless a test passes ``embedding`` (the ``[embedding]`` table's lines): the tests that are
    about embeddings turn the real model on, the others stay fast."""
    settings = {"primary_concurrency": 8, "lock_timeout_ms": 10_000, "stale_lock_ms": 60_000, **sync}
    lines = [
        "[gitlab]",
        f'base_url = "{base_url}"',
        f'token_env = "{token_env}"',
        *(line for path in projects for line in ("[[projects]]", f'path = "{path}"')),
        "[storage]",
        f'db_path = "{db_path or tmp_path / "lore.db"}"',
        "[sync]",
        *(f"{key} = {value}" for key, value in settings.items()),
        "[embedding]",
        embedding,
    ]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return path
