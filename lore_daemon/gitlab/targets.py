"""Surgical target parsing: IIDs, URLs and GitLab references → one project and two IID lists.

Pure and offline by design (it takes no client): every rejection here happens before any network
call, which is what keeps the token from ever following a pasted URL to another host.

Accepted forms:

* ``issues`` / ``mrs``: positive IIDs (need a project from elsewhere);
* ``issueUrls`` / ``mrUrls``: ``{base}/{group/…/project}/-/issues/N``, ``…/-/work_items/N``,
  ``…/-/merge_requests/N`` (also ``…/N/diffs|commits|pipelines``), with an optional trailing
  slash, query string or fragment (``#note_123``);
* ``refs``: ``#12``, ``!34``, ``group/sub/proj#12``, ``group/proj!34``, or any URL above.

Project paths compare case-insensitively, as GitLab looks them up (``find_by_full_path`` is
case-insensitive): ``Group/Proj#1`` and ``group/proj!2`` name one project. The resolved
``project`` keeps the first spelling met, the explicit ``project`` param first.

Fields are read in a fixed order (``project``, ``issues``, ``mrs``, ``issueUrls``, ``mrUrls``,
``refs``); IIDs keep their first-seen position in that order and the first error met is raised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from lore_daemon.errors import TargetError
from lore_daemon.protocol import MAX_SURGICAL_ENTITIES, TargetParams

from ._urls import Origin, normalize_base_url, parse_origin, strip_credentials

Kind = Literal["issue", "mr"]

MAX_IID = 2**31 - 1  # GitLab IIDs are 32-bit integers; anything larger cannot exist

_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"
_PROJECT_PATH = rf"{_SEGMENT}(?:/{_SEGMENT})+"  # at least namespace/project
_PROJECT_RE = re.compile(rf"^{_PROJECT_PATH}$")
_REF_RE = re.compile(rf"^(?P<project>{_PROJECT_PATH})?(?P<sigil>[#!])(?P<iid>[0-9]+)$")
_URL_TAIL_RE = re.compile(
    rf"^(?P<project>{_PROJECT_PATH})/-/(?P<route>issues|work_items|merge_requests)/(?P<iid>[0-9]+)"
    r"(?:/(?P<tab>diffs|commits|pipelines))?/?$"
)
_ROUTE_KIND: dict[str, Kind] = {"issues": "issue", "work_items": "issue", "merge_requests": "mr"}
_FIELD_KIND: dict[str, Kind] = {"issueUrls": "issue", "mrUrls": "mr"}
_KIND_WORD: dict[Kind, str] = {"issue": "an issue", "mr": "a merge request"}


@dataclass(frozen=True, slots=True)
class ResolvedTargets:
    """What a surgical request names: one project and deduplicated IIDs in first-seen order."""

    project: str  # path_with_namespace as first spelled (or a numeric id given as ``project``)
    issues: tuple[int, ...]
    mrs: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.issues) + len(self.mrs)


def _error(code: str, message: str, suggestion: str, **details: Any) -> TargetError:
    return TargetError(message, code, suggestion, details=details)


def _invalid(message: str, suggestion: str, **details: Any) -> TargetError:
    return _error("INVALID_TARGET", message, suggestion, **details)


@dataclass
class _Collector:
    """Accumulates entities and the one project they agree on."""

    project: str | None = None
    project_from: dict[str, Any] = field(default_factory=dict)
    needs_project: dict[str, Any] | None = None
    seen: set[tuple[Kind, int]] = field(default_factory=set)
    issues: list[int] = field(default_factory=list)
    mrs: list[int] = field(default_factory=list)

    def name_project(self, path: str, where: dict[str, Any]) -> None:
        if self.project is None:
            self.project, self.project_from = path, where
            return
        if self.project.isdigit() != path.isdigit():
            raise _invalid(
                f"project {self.project!r} and target project {path!r} cannot be compared offline",
                "Give `project` as a path (group/project) when combining it with URLs or references.",
                projects=[self.project, path], first=self.project_from, **where,
            )
        if self.project.casefold() != path.casefold():
            raise _error(
                "MIXED_PROJECTS",
                f"targets name two projects: {self.project!r} and {path!r}",
                "Split the request: one surgical sync covers one project.",
                projects=[self.project, path], first=self.project_from, **where,
            )

    def add(self, kind: Kind, iid: int, where: dict[str, Any], *, has_project: bool) -> None:
        if not has_project and self.needs_project is None:
            self.needs_project = where
        key = (kind, iid)
        if key in self.seen:
            return
        if len(self.seen) >= MAX_SURGICAL_ENTITIES:
            raise _error(
                "TOO_MANY_TARGETS",
                f"more than {MAX_SURGICAL_ENTITIES} distinct issues and merge requests in one request",
                f"Split the targets into requests of at most {MAX_SURGICAL_ENTITIES} entities.",
                limit=MAX_SURGICAL_ENTITIES, **where,
            )
        self.seen.add(key)
        (self.issues if kind == "issue" else self.mrs).append(iid)


def resolve_targets(
    params: TargetParams, base_url: str, default_project: str | None = None
) -> ResolvedTargets:
    """Validate and resolve every target of a surgical request, offline.

    ``default_project`` (e.g. the only configured project) is used only when no target and no
    ``project`` param name one. Raises :class:`TargetError` with codes ``INVALID_TARGET``,
    ``MIXED_PROJECTS``, ``TARGET_HOST_MISMATCH``, ``TOO_MANY_TARGETS``, ``NO_TARGETS`` or
    ``PROJECT_REQUIRED``; ``details`` names the offending field, index and target.
    """
    origin = parse_origin(normalize_base_url(base_url))
    assert origin is not None
    found = _Collector()
    if params.project is not None:
        explicit = _parse_project(params.project, origin)
        found.name_project(explicit, {"field": "project", "target": strip_credentials(params.project)})
    bare: tuple[tuple[str, Kind, list[int]], ...] = (
        ("issues", "issue", params.issues),
        ("mrs", "mr", params.mrs),
    )
    for field_name, bare_kind, iids in bare:
        for index, iid in enumerate(iids):
            where = {"field": field_name, "index": index, "target": iid}
            found.add(bare_kind, _check_iid(iid, where), where, has_project=False)
    for field_name, urls in (("issueUrls", params.issue_urls), ("mrUrls", params.mr_urls)):
        for index, url in enumerate(urls):
            where = {"field": field_name, "index": index, "target": strip_credentials(url)}
            kind, url_project, iid = _parse_url(url, origin, where)
            if kind != _FIELD_KIND[field_name]:
                raise _invalid(
                    f"{where['target']!r} is {_KIND_WORD[kind]} URL, given in {field_name}",
                    f"Pass it in {'issueUrls' if kind == 'issue' else 'mrUrls'} (or in refs).",
                    **where,
                )
            found.name_project(url_project, where)
            found.add(kind, iid, where, has_project=True)
    for index, ref in enumerate(params.refs):
        where = {"field": "refs", "index": index, "target": strip_credentials(ref)}
        ref_kind, ref_project, ref_iid = _parse_ref(ref, origin, where)
        if ref_project is not None:
            found.name_project(ref_project, where)
        found.add(ref_kind, ref_iid, where, has_project=ref_project is not None)
    if not found.seen:
        raise _error(
            "NO_TARGETS",
            "the request names no issue or merge request",
            "Give at least one of issues, mrs, issueUrls, mrUrls or refs.",
        )
    project: str | None = found.project
    if project is None and default_project is not None:
        project = _parse_project(default_project, origin)
    if project is None:
        where = found.needs_project or {}
        raise _error(
            "PROJECT_REQUIRED",
            f"target {where.get('target')!r} needs a project and none was given or could be inferred",
            "Pass `project` (group/project), or use a URL or a qualified reference like group/proj#12.",
            **where,
        )
    return ResolvedTargets(project=project, issues=tuple(found.issues), mrs=tuple(found.mrs))


def _check_iid(iid: object, where: dict[str, Any]) -> int:
    if isinstance(iid, bool) or not isinstance(iid, int) or not 1 <= iid <= MAX_IID:
        raise _invalid(
            f"{iid!r} is not a valid IID", f"IIDs are whole numbers from 1 to {MAX_IID}.", **where
        )
    return iid


def _parse_iid_text(text: str, where: dict[str, Any]) -> int:
    digits = text.lstrip("0") or "0"
    return _check_iid(int(digits) if len(digits) <= 10 else MAX_IID + 1, where)


def _parse_ref(ref: str, origin: Origin, where: dict[str, Any]) -> tuple[Kind, str | None, int]:
    text = ref.strip()
    if text.lower().startswith(("http://", "https://")):
        return _parse_url(text, origin, where)
    match = _REF_RE.match(text)
    if match is None:
        raise _invalid(
            f"{ref!r} is not a GitLab reference or URL",
            "Use #12 or group/proj#12 for issues, !34 or group/proj!34 for merge requests, or a full URL.",
            **where,
        )
    kind: Kind = "issue" if match["sigil"] == "#" else "mr"
    return kind, match["project"], _parse_iid_text(match["iid"], where)


def _parse_url(url: str, origin: Origin, where: dict[str, Any]) -> tuple[Kind, str, int]:
    text = url.strip()
    if parse_origin(text) is None:
        raise _invalid(f"{where['target']!r} is not an absolute http(s) URL", "Paste the full URL.", **where)
    parts = urlsplit(text)
    if parts.username is not None or parts.password is not None:
        raise _invalid(
            f"{where['target']!r} carries credentials", "Remove the user:password@ part of the URL.", **where
        )
    if not origin.owns(text):
        raise _error(
            "TARGET_HOST_MISMATCH",
            f"{where['target']!r} is not on the configured GitLab ({origin.describe()})",
            "Only URLs of the configured GitLab can be synced (scheme, host, port and base path must match);"
            " the token is never sent anywhere else.",
            expected=origin.describe(), **where,
        )
    relative = unquote(parts.path)[len(origin.base_path):].strip("/")
    match = _URL_TAIL_RE.match(relative)
    if match is None or relative.startswith("groups/"):
        raise _invalid(
            f"{where['target']!r} is not a project issue or merge request URL",
            "Use a URL like {base}/group/project/-/issues/12 or …/-/merge_requests/34.",
            **where,
        )
    kind = _ROUTE_KIND[match["route"]]
    if match["tab"] is not None and kind != "mr":
        raise _invalid(
            f"{where['target']!r} is not an issue URL GitLab serves", "Drop the trailing part.", **where
        )
    return kind, match["project"], _parse_iid_text(match["iid"], where)


def _parse_project(value: str, origin: Origin) -> str:
    """A project named by path, numeric id, or the project's URL on the configured GitLab."""
    text = value.strip()
    where = {"field": "project", "target": strip_credentials(text)}
    if text.lower().startswith(("http://", "https://")):
        if not origin.owns(text) or urlsplit(text).username is not None:
            raise _error(
                "TARGET_HOST_MISMATCH",
                f"project URL {where['target']!r} is not on the configured GitLab ({origin.describe()})",
                "Give the project as group/project, or a URL of the configured GitLab.",
                expected=origin.describe(), **where,
            )
        text = unquote(urlsplit(text).path)[len(origin.base_path):].split("/-/")[0]
    text = text.strip("/")
    if text.isascii() and text.isdigit() and int(text) > 0:
        return text
    if not _PROJECT_RE.match(text):
        raise _invalid(
            f"{value!r} is not a project path",
            "Give the project as group/project (subgroups allowed) or its numeric id.",
            **where,
        )
    return text
