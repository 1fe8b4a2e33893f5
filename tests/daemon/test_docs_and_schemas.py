"""The published contract cannot drift: schema files and docs/protocol.md are checked against code."""

from __future__ import annotations

import inspect
import re
import typing
from pathlib import Path

import msgspec

from lore_daemon import protocol, schemagen
from lore_daemon.errors import CODES, EXIT_CLASSES
from lore_daemon.server import build_server
from lore_daemon.services.runtime import DaemonSettings

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")


def test_checked_in_schemas_match_the_code(tmp_path: Path) -> None:
    written = schemagen.write(tmp_path)
    checked_in = sorted(p.name for p in (ROOT / "schema" / "robot").glob("*.json"))
    assert checked_in == written, "run `make schemas` (python -m lore_daemon.schemagen schema/robot)"
    for name in written:
        expected = (tmp_path / name).read_text(encoding="utf-8")
        actual = (ROOT / "schema" / "robot" / name).read_text(encoding="utf-8")
        assert actual == expected, f"schema/robot/{name} is stale: run `make schemas`"


def test_schema_descriptions_do_not_depend_on_docstring_indentation() -> None:
    """3.13 strips docstring indentation at compile time and 3.11 does not; the files must not care."""

    def descriptions(node: object) -> list[str]:
        if isinstance(node, dict):
            found = [v for k, v in node.items() if k == "description" and isinstance(v, str)]
            return found + [d for v in node.values() for d in descriptions(v)]
        if isinstance(node, list):
            return [d for v in node for d in descriptions(v)]
        return []

    every = [d for t in schemagen.wire_types() for d in descriptions(schemagen.json_schema(t))]
    assert any("\n" in d for d in every)  # multi-line docstrings are there to be normalised
    assert [d for d in every if d != inspect.cleandoc(d)] == []


def test_timestamps_are_date_time_in_the_schemas() -> None:
    text = (ROOT / "schema" / "robot" / "SyncRun.json").read_text(encoding="utf-8")
    assert '"format": "date-time"' in text


def test_every_registered_method_is_documented() -> None:
    server, _ = build_server(DaemonSettings())
    methods = [name for name in server.protocol.fm.features if name.startswith("lore/")]
    assert len(methods) == 9
    missing = [m for m in methods if f"### `{m}`" not in DOC]
    assert missing == []


def test_every_error_code_is_documented() -> None:
    missing = [code for code in CODES if not re.search(rf"^\| `{code}` \|", DOC, re.MULTILINE)]
    assert missing == []


def test_every_recovery_action_kind_is_documented() -> None:
    kinds = typing.get_args(protocol.ActionKind)
    missing = [kind for kind in kinds if not re.search(rf"^\| `{kind}` \|", DOC, re.MULTILINE)]
    assert missing == []


def test_the_bridge_exit_code_table_is_derived_from_the_codes() -> None:
    section = DOC[DOC.index("## Bridge exit codes") : DOC.index("## The `lore-daemon` command")]
    rows = [line for line in section.splitlines() if re.match(r"^\| \d+ \|", line)]
    expected = []
    for exit_code, meaning in EXIT_CLASSES.items():
        codes = ", ".join(f"`{c}`" for c, info in CODES.items() if info.exit_code == exit_code) or "—"
        expected.append(f"| {exit_code} | {meaning} | {codes} |")
    assert rows == expected
    assert set(protocol.BRIDGE_EXIT_CODES) == set(EXIT_CLASSES)


def test_the_progress_notification_and_every_field_is_documented() -> None:
    section = DOC[DOC.index("## Progress") : DOC.index("## Cancellation")]
    assert "`lore/progress`" in section
    fields = [f.encode_name for f in msgspec.structs.fields(protocol.ProgressNotification)]
    missing = [name for name in fields if not re.search(rf"\b{name}\b", section)]
    assert missing == []
