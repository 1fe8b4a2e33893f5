"""The simulator's control API under ``/_sim/`` (no auth, never logged, never faulted).

| method | path | body / query | answer |
|---|---|---|---|
| GET | /_sim/health | | ``{ok, base_url, pid}`` |
| GET | /_sim/log | ``since`` | ``{entries, last_seq}`` |
| POST | /_sim/log/clear | | ``{ok}`` (also resets counters) |
| GET/POST | /_sim/faults | rule fields | rules / ``{id}`` |
| POST | /_sim/faults/clear | | ``{ok}`` |
| POST | /_sim/latency | ``{ms, route}`` | ``{ok}`` |
| POST | /_sim/mutate | ``{op, args}`` | the op's result |
| GET | /_sim/dump | ``project`` | the project's full truth |
| GET | /_sim/stats | | counters |
| GET/POST | /_sim/options | ``{name, value}`` | options |
| GET/POST | /_sim/projects | ``project`` / ``{project, name, value}`` | that project's settings |
| GET/POST | /_sim/clock | ``{advance_ms}`` | ``{now_ms, now, offset_ms, date}`` |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from lore_daemon.errors import InvalidParamsError, LoreError
from lore_daemon.sim.config import ProjectSettings
from lore_daemon.sim.diffs import diff_files
from lore_daemon.sim.events import EVENT_KINDS, resource_events
from lore_daemon.sim.external import closes_issues
from lore_daemon.sim.notes import discussions
from lore_daemon.sim.wire import Request, Response, json_response

if TYPE_CHECKING:
    from lore_daemon.sim.app import SimApp


class ControlApi:
    def __init__(self, app: SimApp) -> None:
        self.app = app

    def handle(self, req: Request) -> Response:
        try:
            return json_response(200, self._dispatch(req))
        except LoreError as exc:
            return json_response(400, {"error": exc.message, "code": exc.code, "details": exc.details})
        except (ValueError, TypeError) as exc:  # a number or option of the wrong shape
            return json_response(400, {"error": str(exc), "code": "INVALID_PARAMS", "details": {}})

    def _body(self, req: Request) -> dict[str, Any]:
        if not req.body:
            return {}
        try:
            data = msgspec.json.decode(req.body)
        except msgspec.DecodeError as exc:
            raise _bad(f"control body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise _bad("control body must be a JSON object")
        return data

    def _dispatch(self, req: Request) -> Any:
        app = self.app
        route = (req.method, req.path.removeprefix("/_sim/").rstrip("/"))
        body = self._body(req) if req.method == "POST" else {}
        match route:
            case ("GET", "health"):
                return {"ok": True, "base_url": app.base_url, "pid": app.pid}
            case ("GET", "log"):
                since = int(req.param("since") or 0)
                return {"entries": app.log.since(since), "last_seq": app.log.seq}
            case ("POST", "log/clear"):
                app.log.clear()
                return {"ok": True}
            case ("GET", "faults"):
                return app.faults.describe()
            case ("POST", "faults"):
                return {"id": app.faults.add(body).id}
            case ("POST", "faults/clear"):
                app.faults.clear()
                return {"ok": True}
            case ("POST", "latency"):
                app.faults.set_latency(int(body.get("ms", 0)), body.get("route"))
                return {"ok": True}
            case ("POST", "mutate"):
                return app.mutator.apply(str(body.get("op", "")), dict(body.get("args") or {}))
            case ("GET", "dump"):
                return self.dump(req.param("project") or "1")
            case ("GET", "stats"):
                return {
                    **app.log.stats(),
                    "faults": app.faults.describe(),
                    "options": app.options.as_dict(),
                    "throttle": app.throttle.describe(),
                }
            case ("GET", "options"):
                return app.options.as_dict()
            case ("POST", "options"):
                app.options.set(str(body.get("name")), body.get("value"))
                if str(body.get("name")).startswith("rate_limit"):
                    app.throttle.reset()  # a new budget starts with a fresh window
                return app.options.as_dict()
            case ("GET", "projects"):
                return self._project(req.param("project") or "1").as_dict()
            case ("POST", "projects"):
                settings = self._project(str(body.get("project", "")))
                settings.set(str(body.get("name")), body.get("value"))
                return settings.as_dict()
            case ("GET", "clock"):
                return app.clock.describe()
            case ("POST", "clock"):
                app.clock.advance(int(body.get("advance_ms", 0)))
                return app.clock.describe()
        raise _bad(f"no control route {req.method} {req.path}")

    def _project(self, ref: str) -> ProjectSettings:
        project = self.app.dataset.find_project(ref)
        if project is None:
            raise _bad(f"no project {ref!r}")
        return self.app.dataset.settings[project.id]

    def dump(self, project_ref: str) -> dict[str, Any]:
        """Everything the simulator holds for one project, as the API would serve it."""
        app = self.app
        project = app.dataset.find_project(project_ref)
        if project is None:
            raise _bad(f"no project {project_ref!r}")
        issues = app.dataset.table(project.id, "issue")
        mrs = app.dataset.table(project.id, "mr")
        out: dict[str, Any] = {
            "project": app.entities.project(project),
            "settings": app.dataset.settings[project.id].as_dict(),
            "issues": [],
            "merge_requests": [],
            "hidden": {"issues": sorted(issues.hidden), "merge_requests": sorted(mrs.hidden)},
            "discussions": {"issues": {}, "merge_requests": {}},
            "events": {"issues": {}, "merge_requests": {}},
            "closes_issues": {},
            "diffs": {},
        }
        for table, key in ((issues, "issues"), (mrs, "merge_requests")):
            for iid in range(1, table.count + 1):
                if not table.visible(iid):
                    continue
                if table.kind == "issue":
                    out["issues"].append(app.entities.issue(project, iid))
                else:
                    out["merge_requests"].append(app.entities.merge_request(project, iid, single=True))
                    out["closes_issues"][str(iid)] = closes_issues(app.entities, project, iid)
                    out["diffs"][str(iid)] = diff_files(app.dataset, project.id, iid)
                out["discussions"][key][str(iid)] = discussions(app.dataset, table, iid)
                out["events"][key][str(iid)] = {
                    k: resource_events(app.entities, table, iid, k) for k in EVENT_KINDS
                }
        return out


def _bad(message: str) -> InvalidParamsError:
    return InvalidParamsError(message, "INVALID_PARAMS", "Check the control request.")
