"""The GitLab REST v4 routes the simulator answers (API-NOTES §6), with GitLab's checks in order:
route exists (else ``{"error":"404 Not Found"}``) → token (401) → method (405) → moved
project (301) → project (404) → feature enabled (403) → entity visible (404).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from lore_daemon.sim.config import RuntimeOptions, SimConfig
from lore_daemon.sim.data import Dataset, EntityTable, Kind, ProjectInfo
from lore_daemon.sim.diffs import diff_files
from lore_daemon.sim.entities import Entities
from lore_daemon.sim.events import EVENT_KINDS, resource_events
from lore_daemon.sim.external import closes_issues
from lore_daemon.sim.listing import ListOptions, paginate, select_entities
from lore_daemon.sim.notes import discussions
from lore_daemon.sim.precision import with_microseconds
from lore_daemon.sim.wire import (
    ApiError,
    Request,
    Response,
    invalid_param,
    json_response,
    no_route,
    not_found,
)

API_PREFIX = "/api/v4/"
_KIND_SEGMENTS: dict[str, Kind] = {"issues": "issue", "merge_requests": "mr"}
_ENTITY_NAMES = {"issue": "Issue", "mr": "Merge Request"}
_EVENT_SEGMENTS = {f"resource_{k}_events": k for k in EVENT_KINDS}
_MR_ONLY = ("closes_issues", "diffs", "changes")


def auth_kind(req: Request) -> str | None:
    """How the request carried a token (logged instead of the token itself)."""
    if "private-token" in req.headers:
        return "private-token"
    if req.headers.get("authorization", "").lower().startswith("bearer "):
        return "bearer"
    if any(k in ("private_token", "access_token") for k, _ in req.query):
        return "query"
    return None


def presented_token(req: Request) -> str | None:
    kind = auth_kind(req)
    if kind == "private-token":
        return req.headers["private-token"]
    if kind == "bearer":
        return req.headers["authorization"][7:].strip()
    if kind == "query":
        return req.param("private_token") or req.param("access_token")
    return None


class Api:
    """Answers ``/api/v4/...`` requests from the data set, the overlays and the runtime options."""

    def __init__(self, config: SimConfig, ds: Dataset, entities: Entities, options: RuntimeOptions) -> None:
        self.config = config
        self.ds = ds
        self.entities = entities
        self.options = options

    def handle(self, req: Request) -> Response:
        try:
            return self._dispatch(req)
        except ApiError as err:
            return err.response

    def _list_options(self, keyset: bool = False) -> ListOptions:
        return ListOptions(
            self.ds.base_url, self.options.total_threshold, self.options.omit_next_page_header, keyset
        )

    def _dispatch(self, req: Request) -> Response:
        if not req.path.startswith(API_PREFIX):
            raise no_route()
        raw_segments = req.path[len(API_PREFIX) :].split("/")
        segments = [unquote(s) for s in raw_segments]
        if not _route_exists(segments):
            raise no_route()
        self._authenticate(req)
        if req.method not in ("GET", "HEAD"):
            if segments[0] == "projects" and segments[1].lower() in self.ds.moved_paths:
                raise ApiError(405, {"message": "Non GET methods are not allowed for moved projects"})
            raise ApiError(405, {"message": "405 Method Not Allowed"})
        head = segments[0]
        if head == "user":
            return json_response(200, self.entities.current_user())
        if head in ("version", "metadata"):
            return json_response(200, self.entities.metadata())
        moved_to = self.ds.moved_paths.get(segments[1].lower())
        if moved_to is not None:
            return self._moved(req, moved_to, raw_segments)
        project = self.ds.find_project(segments[1])
        if project is None:
            raise not_found("Project")
        if len(segments) == 2:
            return json_response(200, self.entities.project(project))
        kind = _KIND_SEGMENTS[segments[2]]
        settings = self.ds.settings[project.id]
        if not (settings.issues_enabled if kind == "issue" else settings.merge_requests_enabled):
            raise ApiError(403, {"message": "403 Forbidden"})
        table = self.ds.table(project.id, kind)
        if len(segments) == 3:
            return self._list(req, project, table)
        iid = _iid(segments[3], kind)
        if not table.visible(iid):
            raise not_found(_ENTITY_NAMES[kind])
        if len(segments) == 4:
            return json_response(200, self._entity(project, table, iid, single=True))
        return self._dependent(req, project, table, iid, segments[4:])

    def _authenticate(self, req: Request) -> None:
        token = presented_token(req)
        if token != self.config.token:
            raise ApiError(401, {"message": "401 Unauthorized"})
        if self.options.token_mode == "expired":
            raise ApiError(
                401,
                {
                    "error": "invalid_token",
                    "error_description": "Token is expired. You can either do re-authorization "
                    "or token refresh.",
                },
            )
        if self.options.token_mode == "insufficient_scope":
            raise ApiError(
                403,
                {
                    "error": "insufficient_scope",
                    "error_description": "The request requires higher privileges than provided "
                    "by the access token.",
                    "scope": "api",
                },
            )

    def _moved(self, req: Request, project_id: int, raw_segments: list[str]) -> Response:
        rest = "/".join(raw_segments[2:])
        location = f"{self.ds.base_url}{API_PREFIX}projects/{project_id}" + (f"/{rest}" if rest else "")
        if req.query_string:
            location += f"?{req.query_string}"
        return json_response(
            301,
            {"message": f"This resource has been moved permanently to {location}"},
            [("Location", location)],
        )

    def _entity(
        self, project: ProjectInfo, table: EntityTable, iid: int, *, single: bool = False
    ) -> dict[str, Any]:
        if table.kind == "issue":
            return self.entities.issue(project, iid)
        return self.entities.merge_request(project, iid, single=single)

    def _list(self, req: Request, project: ProjectInfo, table: EntityTable) -> Response:
        keyset = table.kind == "issue" and self.options.keyset_issues  # MRs: 405 on every version
        iids, headers = select_entities(req, table, self._list_options(keyset))
        if table.kind == "mr" and req.param("view") == "simple":
            keys = (
                "id",
                "iid",
                "project_id",
                "title",
                "description",
                "state",
                "created_at",
                "updated_at",
                "web_url",
            )
            items = [{k: full[k] for k in keys} for full in (self._entity(project, table, i) for i in iids)]
        else:
            items = [self._entity(project, table, i) for i in iids]
        return json_response(200, items, headers)

    def _dependent(
        self, req: Request, project: ProjectInfo, table: EntityTable, iid: int, rest: list[str]
    ) -> Response:
        what = rest[0]
        one = rest[1] if len(rest) == 2 else None
        items: list[dict[str, Any]]
        if what == "discussions":
            items = discussions(self.ds, table, iid)
            if one is not None:
                found = [d for d in items if d["id"] == one]
                if not found:
                    raise not_found("Discussion")
                return json_response(200, self._stamped(found)[0])
        elif what in _EVENT_SEGMENTS:
            items = resource_events(self.entities, table, iid, _EVENT_SEGMENTS[what])
            if one is not None:
                matches = [e for e in items if str(e["id"]) == one]
                if not matches:
                    raise ApiError(404, {"message": "404 Not found"})
                return json_response(200, self._stamped(matches)[0])
        elif what == "closes_issues":
            page, headers = paginate(req, closes_issues(self.entities, project, iid), self._list_options())
            # GitLab pages the mixed list, then answers a page's internal issues before its external ones
            page.sort(key=lambda item: isinstance(item["id"], str))
            return json_response(200, page, headers)
        elif what == "diffs":
            items = diff_files(self.ds, project.id, iid)
        else:  # changes (deprecated): the MR with every diff inline
            payload = self.entities.merge_request(project, iid, single=True)
            payload.update({"changes": diff_files(self.ds, project.id, iid), "overflow": False})
            return json_response(200, payload)
        page, headers = paginate(req, items, self._list_options())
        return json_response(200, page if what == "diffs" else self._stamped(page), headers)

    def _stamped(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Notes and events with microsecond timestamps when that knob is on."""
        return with_microseconds(items) if self.options.microsecond_timestamps else items


def _route_exists(s: list[str]) -> bool:
    """Whether the decoded path names a known route (an unencoded project path does not)."""
    n = len(s)
    if n == 1:
        return s[0] in ("user", "version", "metadata")
    if n < 2 or s[0] != "projects" or not s[1]:
        return False
    if n == 2:
        return True
    if s[2] not in _KIND_SEGMENTS or (n >= 4 and not s[3]):
        return False
    if n <= 4:
        return True
    what = s[4]
    mr_only_ok = s[2] == "merge_requests" or what not in _MR_ONLY
    if n == 5:
        return mr_only_ok and (what in ("discussions", *_EVENT_SEGMENTS, *_MR_ONLY))
    return n == 6 and bool(s[5]) and what in ("discussions", *_EVENT_SEGMENTS)


def _iid(raw: str, kind: Kind) -> int:
    if not raw.isdigit():
        raise invalid_param("issue_iid" if kind == "issue" else "merge_request_iid")
    return int(raw)
