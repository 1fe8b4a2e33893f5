"""Surgical target parsing: every error code, each with the target it names in ``details``."""

from __future__ import annotations

from typing import Any

import pytest

from lore_daemon.errors import CODES, TargetError
from lore_daemon.gitlab import resolve_targets

from .support import BASE, SUB, G, params

ERRORS: list[tuple[str, dict[str, Any], str, str, dict[str, Any]]] = [
    ("nothing", {}, BASE, "NO_TARGETS", {}),
    ("only a project", {"project": "g/p"}, BASE, "NO_TARGETS", {}),
    ("zero iid", {"project": "g/p", "issues": [0]}, BASE, "INVALID_TARGET", {"field": "issues", "index": 0}),
    (
        "negative mr iid",
        {"project": "g/p", "mrs": [4, -3]},
        BASE,
        "INVALID_TARGET",
        {"field": "mrs", "index": 1},
    ),
    (
        "huge iid",
        {"project": "g/p", "refs": ["#99999999999999999999"]},
        BASE,
        "INVALID_TARGET",
        {"field": "refs"},
    ),
    ("ref #0", {"project": "g/p", "refs": ["#0"]}, BASE, "INVALID_TARGET", {"target": "#0"}),
    ("garbage ref", {"project": "g/p", "refs": ["twelve"]}, BASE, "INVALID_TARGET", {"target": "twelve"}),
    (
        "unclosed IPv6 bracket",
        {"refs": ["https://u:pw@[::1/g/p/-/issues/1"]},
        BASE,
        "INVALID_TARGET",
        {"target": "[::1/g/p/-/issues/1"},
    ),
    ("epic ref", {"project": "g/p", "refs": ["group&5"]}, BASE, "INVALID_TARGET", {"field": "refs"}),
    ("bare number ref", {"project": "g/p", "refs": ["12"]}, BASE, "INVALID_TARGET", {"field": "refs"}),
    ("single-segment project ref", {"refs": ["proj#12"]}, BASE, "INVALID_TARGET", {"target": "proj#12"}),
    (
        "unicode digits",
        {"project": "g/p", "refs": ["#\u0661\u0662"]},
        BASE,
        "INVALID_TARGET",
        {"field": "refs"},
    ),
    (
        "mr url in issueUrls",
        {"issueUrls": [f"{G}/-/merge_requests/3"]},
        BASE,
        "INVALID_TARGET",
        {"field": "issueUrls", "index": 0},
    ),
    ("issue url in mrUrls", {"mrUrls": [f"{G}/-/issues/3"]}, BASE, "INVALID_TARGET", {"field": "mrUrls"}),
    (
        "work item url in mrUrls",
        {"mrUrls": [f"{G}/-/work_items/3"]},
        BASE,
        "INVALID_TARGET",
        {"field": "mrUrls"},
    ),
    (
        "legacy url without /-/",
        {"issueUrls": [f"{G}/issues/3"]},
        BASE,
        "INVALID_TARGET",
        {"field": "issueUrls"},
    ),
    ("project url in issueUrls", {"issueUrls": [f"{G}"]}, BASE, "INVALID_TARGET", {"field": "issueUrls"}),
    ("group work item url", {"issueUrls": [f"{BASE}/groups/g/-/work_items/3"]}, BASE, "INVALID_TARGET", {}),
    ("not a url", {"issueUrls": ["group/proj#3"]}, BASE, "INVALID_TARGET", {"target": "group/proj#3"}),
    ("issue url with mr tab", {"issueUrls": [f"{G}/-/issues/3/diffs"]}, BASE, "INVALID_TARGET", {}),
    (
        "bad project path",
        {"project": "not a path", "issues": [1]},
        BASE,
        "INVALID_TARGET",
        {"field": "project"},
    ),
    (
        "numeric project vs url path",
        {"project": "42", "issueUrls": [f"{G}/-/issues/1"]},
        BASE,
        "INVALID_TARGET",
        {"field": "issueUrls"},
    ),
    (
        "credentials in url",
        {"issueUrls": ["https://u:pw@gitlab.example.com/g/p/-/issues/1"]},
        BASE,
        "INVALID_TARGET",
        {"target": "https://gitlab.example.com/g/p/-/issues/1"},
    ),
    (
        "two projects in urls",
        {"issueUrls": [f"{G}/-/issues/1", f"{BASE}/other/proj/-/issues/2"]},
        BASE,
        "MIXED_PROJECTS",
        {"field": "issueUrls", "index": 1, "projects": ["group/proj", "other/proj"]},
    ),
    (
        "project param vs url",
        {"project": "a/b", "mrUrls": [f"{G}/-/merge_requests/1"]},
        BASE,
        "MIXED_PROJECTS",
        {"field": "mrUrls", "first": {"field": "project", "target": "a/b"}},
    ),
    (
        "project param vs qualified ref",
        {"project": "a/b", "refs": ["a/c#1"]},
        BASE,
        "MIXED_PROJECTS",
        {"field": "refs", "target": "a/c#1"},
    ),
    (
        "url vs qualified ref",
        {"issueUrls": [f"{G}/-/issues/1"], "refs": ["group/proj2!3"]},
        BASE,
        "MIXED_PROJECTS",
        {"field": "refs"},
    ),
    (
        "other host",
        {"issueUrls": ["https://evil.example.com/group/proj/-/issues/1"]},
        BASE,
        "TARGET_HOST_MISMATCH",
        {"field": "issueUrls", "target": "https://evil.example.com/group/proj/-/issues/1"},
    ),
    (
        "other scheme",
        {"mrUrls": ["http://gitlab.example.com/group/proj/-/merge_requests/1"]},
        BASE,
        "TARGET_HOST_MISMATCH",
        {"field": "mrUrls"},
    ),
    (
        "other port",
        {"refs": ["https://gitlab.example.com:8443/group/proj/-/issues/1"]},
        BASE,
        "TARGET_HOST_MISMATCH",
        {"field": "refs"},
    ),
    (
        "outside base path",
        {"issueUrls": [f"{BASE}/group/proj/-/issues/1"]},
        SUB,
        "TARGET_HOST_MISMATCH",
        {"expected": "https://gitlab.example.com:443/gitlab"},
    ),
    (
        "base path prefix is not enough",
        {"issueUrls": [f"{BASE}/gitlabx/group/proj/-/issues/1"]},
        SUB,
        "TARGET_HOST_MISMATCH",
        {},
    ),
    (
        "suffix host",
        {"issueUrls": ["https://gitlab.example.com.evil.io/g/p/-/issues/1"]},
        BASE,
        "TARGET_HOST_MISMATCH",
        {},
    ),
    (
        "project url on another host",
        {"project": "https://evil.example.com/g/p", "issues": [1]},
        BASE,
        "TARGET_HOST_MISMATCH",
        {"field": "project"},
    ),
    ("bare iid, no project", {"issues": [1]}, BASE, "PROJECT_REQUIRED", {"field": "issues", "index": 0}),
    (
        "short ref, no project",
        {"refs": ["!34"]},
        BASE,
        "PROJECT_REQUIRED",
        {"field": "refs", "target": "!34"},
    ),
    (
        "101 distinct",
        {"project": "g/p", "issues": list(range(1, 102))},
        BASE,
        "TOO_MANY_TARGETS",
        {"field": "issues", "index": 100, "limit": 100},
    ),
    (
        "101 across kinds",
        {"project": "g/p", "issues": list(range(1, 61)), "refs": [f"!{i}" for i in range(1, 42)]},
        BASE,
        "TOO_MANY_TARGETS",
        {"field": "refs", "index": 40},
    ),
]


@pytest.mark.parametrize(("name", "given", "base", "code", "details"), ERRORS, ids=[e[0] for e in ERRORS])
def test_rejected_targets(
    name: str, given: dict[str, Any], base: str, code: str, details: dict[str, Any]
) -> None:
    with pytest.raises(TargetError) as caught:
        resolve_targets(params(**given), base)
    err = caught.value
    assert err.code == code
    assert err.suggestion  # every rejection says how to fix it
    assert code in CODES and not err.retryable
    for key, value in details.items():
        assert err.details[key] == value
    assert "pw" not in str(err.details)


def test_every_target_error_code_is_covered() -> None:
    target_codes = {
        "INVALID_TARGET",
        "MIXED_PROJECTS",
        "TARGET_HOST_MISMATCH",
        "TOO_MANY_TARGETS",
        "NO_TARGETS",
        "PROJECT_REQUIRED",
    }
    assert {e[3] for e in ERRORS} == target_codes
