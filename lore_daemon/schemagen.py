"""Write ``schema/robot/<TypeName>.json``: the JSON Schema of every wire Struct (``protocol``,
``protocol_read``).

``python -m lore_daemon.schemagen schema/robot`` (or ``make schemas``). The files are checked in
and a test regenerates them into a temporary directory and fails on any difference, so the
published schemas can never drift from the code. Output is deterministic (sorted keys, 2-space
indent, trailing newline); files of types that no longer exist are removed.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from lore_daemon import protocol, protocol_read

WIRE_MODULES = (protocol, protocol_read)


def wire_types() -> list[type[msgspec.Struct]]:
    """Every public Struct class defined in the wire modules (``protocol``, ``protocol_read``), by name."""
    found = [
        obj
        for module in WIRE_MODULES
        for name, obj in vars(module).items()
        if inspect.isclass(obj)
        and issubclass(obj, msgspec.Struct)
        and obj.__module__ == module.__name__
        and not name.startswith("_")
    ]
    return sorted(found, key=lambda t: t.__name__)


def _normalised(node: Any) -> Any:
    """``node`` with every ``description`` cleaned as ``inspect.cleandoc`` does.

    msgspec copies docstrings verbatim, and their indentation depends on the interpreter (3.13
    strips it at compile time, 3.11 does not) and on msgspec's release; the published schemas
    must not.
    """
    if isinstance(node, dict):
        return {
            key: inspect.cleandoc(value) if key == "description" and isinstance(value, str)
            else _normalised(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_normalised(item) for item in node]
    return node


def json_schema(wire_type: Any) -> dict[str, Any]:
    """The JSON Schema of a wire type, the same whatever the interpreter or msgspec release."""
    schema: dict[str, Any] = _normalised(msgspec.json.schema(wire_type))
    return schema


def render(struct_type: type[msgspec.Struct]) -> str:
    schema = json_schema(struct_type)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{struct_type.__name__}.json"
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate() -> dict[str, str]:
    """File name → content for every wire type."""
    return {f"{t.__name__}.json": render(t) for t in wire_types()}


def write(directory: Path) -> list[str]:
    """Write every schema into ``directory`` and remove stale ones; returns the names written."""
    directory.mkdir(parents=True, exist_ok=True)
    files = generate()
    for stale in directory.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        target = directory / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
    return sorted(files)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m lore_daemon.schemagen DIRECTORY", file=sys.stderr)
        return 2
    names = write(Path(args[0]))
    print(f"wrote {len(names)} schemas to {args[0]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
