"""What the read methods name: ``lore/get``'s one target, and the references inside a search query.

Both are resolved offline with the surgical sync's own parser (``gitlab.targets``), so ``#12``,
``!3``, ``group/proj#12`` and URLs mean exactly what they mean to ``lore/syncSurgical``, and a
URL of another host is rejected before anything else happens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lore_daemon import protocol
from lore_daemon.config import Config
from lore_daemon.errors import InvalidParamsError, LoreError
from lore_daemon.gitlab.targets import MAX_IID, resolve_targets
from lore_daemon.protocol_read import GetParams
from lore_daemon.store.read_search import Reference

_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"
_REF = re.compile(rf"^(?P<project>{_SEGMENT}(?:/{_SEGMENT})+)?(?P<sigil>[#!])(?P<iid>[0-9]{{1,10}})$")
_LEADING = "([{<'\"`"
_TRAILING = ".,;:?!)]}>'\"`"
MAX_QUERY_REFERENCES = 10


@dataclass(frozen=True, slots=True)
class GetTarget:
    project: str
    kind: protocol.EntityKind
    iid: int

    @property
    def ref(self) -> str:
        return f"{self.project}{'#' if self.kind == 'issue' else '!'}{self.iid}"


def default_project(config: Config) -> str | None:
    """The one configured project, which bare ``#12`` means; None with zero or several."""
    paths = config.project_paths
    return paths[0] if len(paths) == 1 else None


def _invalid(message: str, **details: object) -> InvalidParamsError:
    return InvalidParamsError(
        f"Invalid params for lore/get: {message}",
        "INVALID_PARAMS",
        "Name the entity one way: ref (#12, !3, group/proj#12 or a URL), url, or kind + iid.",
        details={"method": "lore/get", **details},
    )


def resolve_get_target(config: Config, params: GetParams) -> GetTarget:
    """The one issue or MR ``params`` names (``INVALID_PARAMS`` or a target code otherwise)."""
    if (params.kind is None) != (params.iid is None):
        raise _invalid("kind and iid go together", path="$.kind" if params.kind is None else "$.iid")
    forms = [name for name, value in (("ref", params.ref), ("url", params.url), ("kind", params.kind))
             if value is not None]
    if len(forms) != 1:
        raise _invalid(
            "give exactly one of ref, url, or kind + iid" + (f" (got {', '.join(forms)})" if forms else ""),
            path="$",
        )
    if params.kind is not None and params.iid is not None:
        targets = protocol.TargetParams(
            project=params.project,
            issues=[params.iid] if params.kind == "issue" else [],
            mrs=[params.iid] if params.kind == "mr" else [],
        )
    else:
        targets = protocol.TargetParams(project=params.project, refs=[params.ref or params.url or ""])
    resolved = resolve_targets(targets, config.gitlab.base_url, default_project(config))
    if resolved.issues:
        return GetTarget(resolved.project, "issue", resolved.issues[0])
    return GetTarget(resolved.project, "mr", resolved.mrs[0])


def query_references(config: Config, text: str, project: str | None) -> list[Reference]:
    """The entities a search query names exactly, in the order written (at most 10).

    Words are looked at one by one, stripped of surrounding punctuation (``(#12)``, ``!3,``). A
    bare ``#12`` belongs to ``project`` (the search's project filter), else to the one configured
    project, else to any mirrored project. Words that are not references (or are URLs of another
    host) are simply text.
    """
    hint = project if project is not None else default_project(config)
    found: list[Reference] = []
    for word in text.split():
        chunk = word.lstrip(_LEADING).rstrip(_TRAILING)
        reference = _reference(config, chunk, hint)
        if reference is not None and reference not in found:
            found.append(reference)
            if len(found) == MAX_QUERY_REFERENCES:
                break
    return found


def _reference(config: Config, chunk: str, hint: str | None) -> Reference | None:
    if chunk.lower().startswith(("http://", "https://")):
        try:
            resolved = resolve_targets(protocol.TargetParams(refs=[chunk]), config.gitlab.base_url)
        except LoreError:  # another host, not an issue/MR URL...: the word is just text
            return None
        if resolved.issues:
            return Reference(resolved.project, "issue", resolved.issues[0])
        return Reference(resolved.project, "mr", resolved.mrs[0])
    match = _REF.match(chunk)
    if match is None:
        return None
    iid = int(match["iid"])
    if not 1 <= iid <= MAX_IID:
        return None
    return Reference(match["project"] or hint, "issue" if match["sigil"] == "#" else "mr", iid)
