"""Surgical target parsing: every accepted form, and proof that parsing is offline."""

from __future__ import annotations

import inspect
import socket
import subprocess
import sys
from typing import Any

import pytest

from lore_daemon.gitlab import ResolvedTargets, resolve_targets
from lore_daemon.gitlab import targets as targets_module

from .support import BASE, SUB, G, params

VALID: list[tuple[str, dict[str, Any], str, str | None, ResolvedTargets]] = [
    (
        "bare iids with project",
        {"project": "group/proj", "issues": [3, 1], "mrs": [2]},
        BASE,
        None,
        ResolvedTargets("group/proj", (3, 1), (2,)),
    ),
    (
        "subgroup project",
        {"project": "g/sub/deeper/proj", "issues": [1]},
        BASE,
        None,
        ResolvedTargets("g/sub/deeper/proj", (1,), ()),
    ),
    ("numeric project id", {"project": "42", "mrs": [7]}, BASE, None, ResolvedTargets("42", (), (7,))),
    (
        "project given as its URL",
        {"project": f"{G}/", "issues": [1]},
        BASE,
        None,
        ResolvedTargets("group/proj", (1,), ()),
    ),
    ("issue url", {"issueUrls": [f"{G}/-/issues/12"]}, BASE, None, ResolvedTargets("group/proj", (12,), ())),
    (
        "work item url",
        {"issueUrls": [f"{G}/-/work_items/12"]},
        BASE,
        None,
        ResolvedTargets("group/proj", (12,), ()),
    ),
    (
        "mr url",
        {"mrUrls": [f"{G}/-/merge_requests/34"]},
        BASE,
        None,
        ResolvedTargets("group/proj", (), (34,)),
    ),
    (
        "mr url with tab, fragment",
        {"mrUrls": [f"{G}/-/merge_requests/34/diffs#note_99"]},
        BASE,
        None,
        ResolvedTargets("group/proj", (), (34,)),
    ),
    (
        "url with fragment, query, slash",
        {"issueUrls": [f"{G}/-/issues/12/?x=1#note_123", f"{G}/-/issues/13#a"]},
        BASE,
        None,
        ResolvedTargets("group/proj", (12, 13), ()),
    ),
    (
        "url with explicit default port",
        {"issueUrls": ["https://GitLab.Example.com:443/group/proj/-/issues/5"]},
        BASE,
        None,
        ResolvedTargets("group/proj", (5,), ()),
    ),
    (
        "url under a base path",
        {"issueUrls": [f"{SUB}/group/proj/-/issues/4"]},
        SUB + "/",
        None,
        ResolvedTargets("group/proj", (4,), ()),
    ),
    (
        "short refs with project",
        {"project": "group/proj", "refs": ["#12", "!34", " #13 "]},
        BASE,
        None,
        ResolvedTargets("group/proj", (12, 13), (34,)),
    ),
    (
        "qualified refs fix the project",
        {"refs": ["group/sub/proj#12", "group/sub/proj!34"]},
        BASE,
        None,
        ResolvedTargets("group/sub/proj", (12,), (34,)),
    ),
    (
        "short ref inherits from qualified ref",
        {"refs": ["group/proj!2", "#5"], "issues": [6]},
        BASE,
        None,
        ResolvedTargets("group/proj", (6, 5), (2,)),
    ),
    (
        "url in refs",
        {"refs": [f"{G}/-/merge_requests/8", f"{G}/-/work_items/9"]},
        BASE,
        None,
        ResolvedTargets("group/proj", (9,), (8,)),
    ),
    (
        "dedup across forms keeps first order",
        {
            "project": "group/proj",
            "issues": [5, 5, 7],
            "issueUrls": [f"{G}/-/issues/7"],
            "refs": ["#5", "#8", "!1"],
            "mrs": [1],
        },
        BASE,
        None,
        ResolvedTargets("group/proj", (5, 7, 8), (1,)),
    ),
    (
        "same iid as issue and mr are distinct",
        {"project": "g/p", "issues": [1], "mrs": [1]},
        BASE,
        None,
        ResolvedTargets("g/p", (1,), (1,)),
    ),
    (
        "case-insensitive project match keeps first spelling",
        {"project": "Group/Proj", "refs": ["group/proj#1"], "issueUrls": [f"{BASE}/GROUP/PROJ/-/issues/2"]},
        BASE,
        None,
        ResolvedTargets("Group/Proj", (2, 1), ()),
    ),
    (
        "default project for bare iids",
        {"issues": [1]},
        BASE,
        "cfg/proj",
        ResolvedTargets("cfg/proj", (1,), ()),
    ),
    (
        "default project ignored when a url names one",
        {"issueUrls": [f"{G}/-/issues/1"], "mrs": [2]},
        BASE,
        "cfg/other",
        ResolvedTargets("group/proj", (1,), (2,)),
    ),
    (
        "percent-encoded url path",
        {"issueUrls": [f"{BASE}/group/my%2Dproj/-/issues/3"]},
        BASE,
        None,
        ResolvedTargets("group/my-proj", (3,), ()),
    ),
    (
        "100 distinct is allowed",
        {"project": "g/p", "issues": list(range(1, 51)), "mrs": list(range(1, 51))},
        BASE,
        None,
        ResolvedTargets("g/p", tuple(range(1, 51)), tuple(range(1, 51))),
    ),
    (
        "duplicates do not count toward the limit",
        {"project": "g/p", "issues": [1] * 500},
        BASE,
        None,
        ResolvedTargets("g/p", (1,), ()),
    ),
]


@pytest.mark.parametrize(("name", "given", "base", "default", "expected"), VALID, ids=[v[0] for v in VALID])
def test_valid_targets(
    name: str, given: dict[str, Any], base: str, default: str | None, expected: ResolvedTargets
) -> None:
    assert resolve_targets(params(**given), base, default) == expected


def test_resolve_takes_no_client_and_makes_no_network_call(monkeypatch: pytest.MonkeyPatch) -> None:
    assert list(inspect.signature(resolve_targets).parameters) == ["params", "base_url", "default_project"]

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("resolve_targets tried to open a connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    got = resolve_targets(
        params(issueUrls=["https://gitlab.unresolvable.invalid/g/p/-/issues/1"]),
        "https://gitlab.unresolvable.invalid",
    )
    assert got == ResolvedTargets("g/p", (1,), ())
    assert "httpx" not in vars(targets_module)


def test_target_parsing_does_not_even_load_the_http_stack() -> None:
    code = (
        "import sys\n"
        "from lore_daemon.gitlab import resolve_targets, models\n"
        "from lore_daemon.protocol import TargetParams\n"
        "resolve_targets(TargetParams(refs=['g/p#1']), 'https://h')\n"
        "assert 'httpx' not in sys.modules, 'httpx was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
