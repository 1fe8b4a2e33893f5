"""Honest configuration: every key the daemon accepts is documented and read by the code, and the
same holds for the Neovim plugin's options and for every ``Tuning`` field.

"Read" means an attribute access ``<...>.<section>.<key>`` in ``lore_daemon`` outside the config
module's own schema, validation and ``lore/status`` summary (showing a key is not using it).
"""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from pathlib import Path

import msgspec.inspect as mi

from lore_daemon.config import _ConfigFile
from lore_daemon.tuning import Tuning

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DOC = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
# Reporting or validating a key is not using it.
NOT_USES = {"config_summary", "_check_values", "embedding_summary", "resolve_embedding"}


def config_keys(info: mi.Type = mi.type_info(_ConfigFile), prefix: str = "") -> list[str]:
    """Dotted keys of the config file's schema; a list of tables is ``name`` plus ``name[].key``."""
    assert isinstance(info, mi.StructType)
    keys = []
    for field in info.fields:
        name = f"{prefix}{field.name}"
        kind = field.type
        if isinstance(kind, mi.StructType):
            keys += config_keys(kind, f"{name}.")
        elif isinstance(kind, mi.ListType) and isinstance(kind.item_type, mi.StructType):
            keys += [name, *config_keys(kind.item_type, f"{name}[].")]
        else:
            keys.append(name)
    return keys


def _uses() -> set[tuple[str, str]]:
    """(owner, attribute) pairs read anywhere in the product: ``x.sync.lock_timeout_ms`` gives
    (sync, lock_timeout_ms); ``for p in cfg.projects: p.path`` gives (projects[], path)."""
    found: set[tuple[str, str]] = set()
    for path in (ROOT / "lore_daemon").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = {
            id(n) for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef) and f.name in NOT_USES for n in ast.walk(f)
        }
        loop_names: set[str] = set()
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.For | ast.comprehension) and isinstance(node.target, ast.Name)
                and isinstance(node.iter, ast.Attribute) and node.iter.attr == "projects"
            ):
                loop_names.add(node.target.id)
        for node in ast.walk(tree):
            if id(node) in skipped or not isinstance(node, ast.Attribute):
                continue
            value = node.value
            if isinstance(value, ast.Attribute):
                found.add((value.attr, node.attr))
            elif isinstance(value, ast.Name):
                found.add((value.id, node.attr))
                if value.id in loop_names:
                    found.add(("projects[]", node.attr))
            found.add(("", node.attr))
    return found


def test_every_config_key_is_documented_and_every_documented_key_exists() -> None:
    keys = config_keys()
    assert "sync.lock_timeout_ms" in keys and "projects[].path" in keys
    documented = set(re.findall(r"^\| `([a-z_.\[\]]+)` \|", CONFIG_DOC, re.MULTILINE))
    assert sorted(set(keys) - documented) == [], "document these keys in docs/configuration.md"
    assert sorted(documented - set(keys)) == [], "docs/configuration.md documents keys that do not exist"


def test_every_config_key_is_read_by_the_code() -> None:
    uses = _uses()
    unread = []
    for key in config_keys():
        owner, _, leaf = key.rpartition(".")
        if (owner.rpartition(".")[2] if owner else "", leaf) not in uses:
            unread.append(key)
    assert unread == [], "a key nothing reads must go (or be made to work)"


def test_every_tuning_field_is_read_by_the_code() -> None:
    uses = _uses()
    unread = [
        f.name for f in fields(Tuning)
        if not {("tuning", f.name), ("DEFAULT_TUNING", f.name)} & uses
    ]
    assert unread == []


def test_every_neovim_plugin_option_is_documented_and_read() -> None:
    lua = (ROOT / "clients" / "nvim" / "lua" / "lore" / "init.lua").read_text(encoding="utf-8")
    block = lua[lua.index("M.config = {") : lua.index("\n}", lua.index("M.config = {"))]
    options = re.findall(r"^\s+(\w+)\s*=", block, re.MULTILINE)
    assert options == ["cmd", "project"]
    clients_doc = (ROOT / "docs" / "clients.md").read_text(encoding="utf-8")
    for option in options:
        assert re.search(rf"M\.config\.{option}\b", lua), f"M.config.{option} is never read"
        assert f"| `{option}` |" in clients_doc, f"document the plugin option {option} in docs/clients.md"
