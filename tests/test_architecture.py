"""The layering rule of docs/architecture.md ("Layers"), checked on the source of every module.

Dependencies point one way, down this list; a module may import its own layer and the ones
below it, never one above:

    interface  cli, __main__, server, socket_server, daemon_socket, services/, rpc/
    sync       sync/
    engine     engine.py (warm state: config, database, GitLab client, tuning, embedding service)
    embedding  embedding/    (providers, chunking, vector index, semantic ranking, fusion)
    store      store/        (may use gitlab.models, the payload types, and nothing else of gitlab/)
    gitlab     gitlab/
    base       protocol, protocol_read, errors, recovery, config, config_errors, config_embedding,
               embedding_catalog, tuning, timeutil, logsetup, schemagen, the package itself

``sim/`` is a separate tool: it may use only the base layer, and the product never imports it —
except the ``lore-daemon sim`` subcommand in ``cli.py``, its front door. And no import cycle among
``lore_daemon`` modules at all. Every import counts, function-level ones included; only those
under ``if TYPE_CHECKING:`` are left out (they never run). ``make lint`` runs this file.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lore_daemon"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("interface", ("cli", "__main__", "server", "socket_server", "daemon_socket", "services", "rpc")),
    ("sync", ("sync",)),
    ("engine", ("engine",)),
    ("embedding", ("embedding",)),
    ("store", ("store",)),
    ("gitlab", ("gitlab",)),
    ("base", ("protocol", "protocol_read", "errors", "recovery", "config", "config_errors",
              "config_embedding", "embedding_catalog", "tuning", "timeutil", "logsetup", "schemagen", "")),
)
SIM = "sim"
ALLOWED_EXCEPTIONS = {("lore_daemon.cli", "lore_daemon.sim.__main__")}  # `lore-daemon sim`
STORE_MAY_USE_FROM_GITLAB = {"lore_daemon.gitlab.models"}


def module_names() -> dict[str, Path]:
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def imports_of(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The ``lore_daemon`` modules ``source`` imports when it runs: top-level and function-level
    imports, relative ones resolved; ``from pkg import name`` is the submodule when ``name`` is one."""
    tree = ast.parse(source)
    skipped = _type_checking_nodes(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return {name for name in found if name == "lore_daemon" or name.startswith("lore_daemon.")}


def import_graph() -> dict[str, set[str]]:
    names = module_names()
    known = set(names)
    return {
        name: imports_of(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", known)
        for name, path in names.items()
    }


def layer_of(module: str) -> int | None:
    """Index in ``LAYERS`` (0 = top); None for ``sim``."""
    rest = module.removeprefix("lore_daemon").removeprefix(".")
    head = rest.split(".")[0]
    if head == SIM:
        return None
    for index, (_, members) in enumerate(LAYERS):
        if head in members:
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and to docs/architecture.md)")


def violations(graph: dict[str, set[str]]) -> Iterator[str]:
    base = len(LAYERS) - 1
    for module, targets in sorted(graph.items()):
        mine = layer_of(module)
        for target in sorted(targets):
            theirs = layer_of(target)
            if (module, target) in ALLOWED_EXCEPTIONS:
                continue
            if mine is None and theirs is not None and theirs != base:
                yield f"{module} (sim) imports {target}: the simulator may use only the base layer"
            elif mine is not None and theirs is None:
                yield f"{module} imports {target}: the product never imports the simulator"
            elif mine is not None and theirs is not None and theirs < mine:
                yield (f"{module} ({LAYERS[mine][0]}) imports {target} ({LAYERS[theirs][0]}): "
                       "a lower layer never imports a higher one")
            elif (mine is not None and LAYERS[mine][0] == "store" and theirs is not None
                  and LAYERS[theirs][0] == "gitlab" and target not in STORE_MAY_USE_FROM_GITLAB):
                yield f"{module} imports {target}: the store uses only gitlab.models of gitlab/"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the graph is small enough to recurse
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


# ------------------------------------------------------------------------------------------ tests


def test_dependencies_point_down_the_layers() -> None:
    assert list(violations(import_graph())) == []


def test_no_import_cycle_among_modules() -> None:
    assert cycles(import_graph()) == []


def test_the_store_imports_nothing_from_sync_services_or_rpc() -> None:
    graph = import_graph()
    upward = {
        (module, target)
        for module, targets in graph.items() if module.startswith("lore_daemon.store")
        for target in targets
        if f"{target}.".split(".")[1] in ("sync", "services", "rpc", "server", "engine")
    }
    assert upward == set()


def test_the_checker_sees_function_level_imports_and_skips_type_checking_ones() -> None:
    source = textwrap.dedent("""
        from typing import TYPE_CHECKING
        from lore_daemon import protocol
        from . import dirty
        if TYPE_CHECKING:
            from lore_daemon.engine import Engine
        def late():
            from lore_daemon.sync.standard import run_standard_sync
    """)
    known = {"lore_daemon.protocol", "lore_daemon.store.dirty", "lore_daemon.sync.standard"}
    found = imports_of(source, "lore_daemon.store.queue", False, known)
    assert found == {"lore_daemon.protocol", "lore_daemon.store.dirty", "lore_daemon.sync.standard"}
    graph = {"lore_daemon.store.queue": found, "lore_daemon.sync.standard": {"lore_daemon.store.queue"}}
    assert cycles(graph) == [["lore_daemon.store.queue", "lore_daemon.sync.standard"]]
    assert any("lower layer never imports" in v for v in violations(graph))
