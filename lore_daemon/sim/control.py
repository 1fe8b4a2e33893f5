"""``SimControl``: a thin HTTP client for the simulator's ``/_sim/`` control API.

It talks HTTP rather than touching state directly so it works the same against a simulator in
this process (``SimServer.control``) or in another one (``python -m lore_daemon.sim``).
"""

from __future__ import annotations

from typing import Any

import httpx

from lore_daemon.errors import InvalidParamsError


class SimControl:
    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=f"{self.base_url}/_sim", timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SimControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        resp = self._http.request(method, path, json=json, params=params)
        data = resp.json()
        if resp.status_code != 200:
            raise InvalidParamsError(
                str(data.get("error")),
                "INVALID_PARAMS",
                "Fix the control call.",
                details=data.get("details") or {},
            )
        return data

    # --- request log --------------------------------------------------------------------------

    def log(self, since: int = 0) -> list[dict[str, Any]]:
        """API requests with ``seq > since``: seq, method, path, query (secrets filtered), status
        (None when dropped or held), outcome, fault_id, started_at/finished_at (ms),
        has_token, auth_header_kind ("private-token" | "bearer" | "query" | None)."""
        entries: list[dict[str, Any]] = self._call("GET", "/log", params={"since": since})["entries"]
        return entries

    def clear_log(self) -> None:
        """Forget logged requests and reset the counters of ``stats()``."""
        self._call("POST", "/log/clear")

    # --- faults and latency -------------------------------------------------------------------

    def add_fault(
        self,
        route: str,
        *,
        method: str = "GET",
        statuses: list[int] | None = None,
        times: int | None = None,
        kind: str = "status",
        retry_after: float | None = None,
        ratelimit_reset: bool = False,
        latency_ms: int | None = None,
        mutation: dict[str, Any] | None = None,
        hold_s: float | None = None,
        interval_ms: int | None = None,
    ) -> int:
        """Add a rule for requests whose path matches the ``route`` regex; returns its id.
        See ``lore_daemon.sim.faults`` for the kinds."""
        spec = {
            "route": route,
            "method": method,
            "statuses": statuses,
            "times": times,
            "kind": kind,
            "retry_after": retry_after,
            "ratelimit_reset": ratelimit_reset,
            "latency_ms": latency_ms,
            "mutation": mutation,
            "hold_s": hold_s,
            "interval_ms": interval_ms,
        }
        rule_id: int = self._call("POST", "/faults", json=spec)["id"]
        return rule_id

    def faults(self) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", "/faults")
        return found

    def clear_faults(self) -> None:
        self._call("POST", "/faults/clear")

    def set_latency(self, ms: int, route: str | None = None) -> None:
        """Latency for every API request, or (with ``route``) for paths matching that regex."""
        self._call("POST", "/latency", json={"ms": ms, "route": route})

    # --- truth and knobs ----------------------------------------------------------------------

    def mutate(self, op: str, **args: Any) -> dict[str, Any]:
        """Apply a mutation: bump_issue/bump_mr(project, iid), bump(project, kind, iid),
        add_note(project, kind, iid, body), delete_note(project, kind, iid, note_id),
        close_issue/reopen_issue(project, iid), hide_issue/unhide_issue/hide_mr/unhide_mr(project,
        iid), add_label(project, kind, iid, label), create(project, kind),
        late_commit(project, kind, iid=None, lag_ms=5000). See docs/simulator.md."""
        result: dict[str, Any] = self._call("POST", "/mutate", json={"op": op, "args": args})
        return result

    def dump(self, project: str | int) -> dict[str, Any]:
        """The simulator's full truth for one project (see docs/simulator.md for the shape)."""
        data: dict[str, Any] = self._call("GET", "/dump", params={"project": str(project)})
        return data

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = self._call("GET", "/stats")
        return data

    def set_option(self, name: str, value: Any) -> dict[str, Any]:
        """total_threshold (int), omit_next_page_header (bool), token_mode ("valid" | "expired" |
        "insufficient_scope"), keyset_issues (bool), rate_limit / rate_limit_period_s (int),
        rate_limit_headers ("all" | "throttled" | "none"), microsecond_timestamps (bool)."""
        data: dict[str, Any] = self._call("POST", "/options", json={"name": name, "value": value})
        return data

    def options(self) -> dict[str, Any]:
        data: dict[str, Any] = self._call("GET", "/options")
        return data

    def set_project_option(self, project: str | int, name: str, value: bool) -> dict[str, Any]:
        """Per project: issues_enabled / merge_requests_enabled (False → 403 on that feature's
        routes), external_tracker (closes_issues also lists external issues)."""
        body = {"project": str(project), "name": name, "value": value}
        data: dict[str, Any] = self._call("POST", "/projects", json=body)
        return data

    def project_options(self, project: str | int) -> dict[str, Any]:
        data: dict[str, Any] = self._call("GET", "/projects", params={"project": str(project)})
        return data

    # --- clock ----------------------------------------------------------------------------------

    def clock(self) -> dict[str, Any]:
        """GitLab's "now": ``{now_ms, now, offset_ms, date}`` (``date`` as in the Date header)."""
        data: dict[str, Any] = self._call("GET", "/clock")
        return data

    def advance_clock(self, ms: int) -> dict[str, Any]:
        """Move the simulator's "now" forward by ``ms`` (e.g. 61_000: past ThrottledTouch's minute)."""
        data: dict[str, Any] = self._call("POST", "/clock", json={"advance_ms": ms})
        return data

    def health(self) -> dict[str, Any]:
        data: dict[str, Any] = self._call("GET", "/health")
        return data
