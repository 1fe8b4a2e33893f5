"""The ``lore`` shell line of a read request (``RecoveryAction.command``), per SPEC §11:
``lore show REF|URL [--max-age DURATION | --offline]``, ``lore list [...]``, ``lore search QUERY [...]``.

Flags mirror the params one to one (``--label`` and ``--type`` repeat); durations are written
``0``, ``500ms``, ``30s``, ``5m`` or ``2h``.
"""

from __future__ import annotations

import shlex

from lore_daemon.protocol_read import DEFAULT_INCLUDE, GetParams, ListFilters, ListParams, SearchParams


def duration(ms: int) -> str:
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms" if ms else "0"


def _filters(p: ListFilters) -> list[str]:
    words: list[str] = []
    if p.project is not None:
        words += ["-p", p.project]
    for flag, value in (("--kind", p.kind), ("--state", p.state), ("--author", p.author),
                        ("--assignee", p.assignee), ("--milestone", p.milestone)):
        if value is not None:
            words += [flag, value]
    for label in p.labels:
        words += ["--label", label]
    if p.updated_after is not None:
        words += ["--updated-after", p.updated_after.isoformat()]
    return words


def show_target(p: GetParams) -> str:
    if p.ref is not None:
        return p.ref
    if p.url is not None:
        return p.url
    sigil = "#" if p.kind == "issue" else "!"
    return f"{p.project or ''}{sigil}{p.iid}"


def get_command(p: GetParams) -> str:
    words = ["lore", "show", show_target(p)]
    if p.ref is not None and p.project is not None:
        words += ["-p", p.project]
    if list(p.include) != list(DEFAULT_INCLUDE):
        words += ["--include", ",".join(p.include)]
    if p.offline:
        words.append("--offline")
    elif p.max_age_ms is not None:
        words += ["--max-age", duration(p.max_age_ms)]
    return shlex.join(words)


def list_command(p: ListParams) -> str:
    words = ["lore", "list", *_filters(p)]
    if p.sort != "updated":
        words += ["--sort", p.sort]
    if p.order != "desc":
        words += ["--order", p.order]
    if p.limit != 50:
        words += ["--limit", str(p.limit)]
    if p.cursor is not None:
        words += ["--cursor", p.cursor]
    return shlex.join(words)


def search_command(p: SearchParams) -> str:
    words = ["lore", "search", p.query, *_filters(p)]
    if p.mode is not None:
        words += ["--mode", p.mode]
    for source_type in p.source_types:
        words += ["--type", source_type]
    if p.limit != 20:
        words += ["--limit", str(p.limit)]
    return shlex.join(words)


def read_command(p: object) -> str | None:
    if isinstance(p, GetParams):
        return get_command(p)
    if isinstance(p, ListParams):
        return list_command(p)
    if isinstance(p, SearchParams):
        return search_command(p)
    return None
