"""MR diff files and diff refs, derived from (seed, project, iid); DiffNote positions point into them."""

from __future__ import annotations

from typing import Any

from lore_daemon.sim.data import Dataset, rng_for, sha1_hex

_DIRS = ["src/sync", "src/api", "src/store", "docs", "tests/unit", "tests/integration", "scripts", "web/app"]
_NAMES = [
    "client",
    "worker",
    "models",
    "handlers",
    "settings",
    "cache",
    "pager",
    "retry",
    "schema",
    "README",
    "index",
    "cli",
    "utils",
    "queue",
    "locks",
]
_EXTS = ["py", "md", "ts", "sql", "toml", "sh"]


def mr_shas(seed: int, project_id: int, iid: int) -> dict[str, str]:
    """An MR's ``diff_refs``; its ``sha`` and every DiffNote position reuse them, so they agree."""
    base = sha1_hex(f"{seed}:{project_id}:mr:{iid}:base")
    return {"base_sha": base, "head_sha": sha1_hex(f"{seed}:{project_id}:mr:{iid}:head"), "start_sha": base}


def diff_files(ds: Dataset, project_id: int, iid: int) -> list[dict[str, Any]]:
    """The files an MR changes, as ``GET …/merge_requests/:iid/diffs`` lists them (one page = 20)."""
    rng = rng_for(ds.seed, project_id, "mr", iid, "diffs")
    count = rng.randint(25, 45) if rng.random() < 0.1 else rng.randint(1, 8)
    seen: set[str] = set()
    files: list[dict[str, Any]] = []
    while len(files) < count:
        path = f"{rng.choice(_DIRS)}/{rng.choice(_NAMES)}{len(seen) % 7 or ''}.{rng.choice(_EXTS)}"
        if path in seen:
            continue
        seen.add(path)
        roll = rng.random()
        start = rng.randint(1, 400)
        if roll < 0.1:
            files.append(
                _file(path, path, "0", "100644", new=True, diff=_hunk(rng, 0, 0, 1, rng.randint(3, 30)))
            )
        elif roll < 0.15:
            files.append(
                _file(path, path, "100644", "0", deleted=True, diff=_hunk(rng, 1, rng.randint(3, 30), 0, 0))
            )
        elif roll < 0.2:
            old = f"{rng.choice(_DIRS)}/old_{path.rsplit('/', 1)[1]}"
            files.append(
                _file(old, path, "100644", "100644", renamed=True, diff=_hunk(rng, start, 3, start, 4))
            )
        else:
            mode = "100755" if path.endswith(".sh") else "100644"
            files.append(_file(path, path, mode, mode, diff=_hunk(rng, start, 3, start, 4)))
    return files


def _file(
    old_path: str,
    new_path: str,
    a_mode: str,
    b_mode: str,
    *,
    new: bool = False,
    deleted: bool = False,
    renamed: bool = False,
    diff: str,
) -> dict[str, Any]:
    return {
        "old_path": old_path,
        "new_path": new_path,
        "a_mode": a_mode,
        "b_mode": b_mode,
        "new_file": new,
        "renamed_file": renamed,
        "deleted_file": deleted,
        "generated_file": False,
        "diff": diff,
    }


def _hunk(rng: Any, old_start: int, old_len: int, new_start: int, new_len: int) -> str:
    """A small unified-diff hunk whose header matches its body's line counts."""
    words = ["retry", "cursor", "page", "token", "lock", "queue", "value", "result"]
    lines = [f"@@ -{old_start},{old_len} +{new_start},{new_len} @@"]
    if old_len == 0:
        lines += [f"+{rng.choice(words)} = {k}" for k in range(new_len)]
    elif new_len == 0:
        lines += [f"-{rng.choice(words)} = {k}" for k in range(old_len)]
    else:
        context = min(old_len, new_len) - 1
        lines += [f" keep_{k}" for k in range(context)]
        lines += [f"-{rng.choice(words)} = old" for _ in range(old_len - context)]
        lines += [f"+{rng.choice(words)} = new" for _ in range(new_len - context)]
    return "\n".join(lines) + "\n"


def line_code(path: str, old_line: int, new_line: int) -> str:
    """GitLab's ``line_code``: SHA-1 of the file path, then the old and new line numbers."""
    return f"{sha1_hex(path)}_{old_line}_{new_line}"
