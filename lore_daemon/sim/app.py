"""One running simulator's state and its per-request decision: control API, faults, latency,
rate limit, API. Order for an API request: fault rules (a proxy in front of GitLab) → latency →
the authenticated-API throttle (Rack::Attack, token owners only) → the API itself."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from typing import Any

from lore_daemon.errors import LoreError
from lore_daemon.sim.clock import SimClock
from lore_daemon.sim.config import RuntimeOptions, SimConfig
from lore_daemon.sim.control_api import ControlApi
from lore_daemon.sim.corpus import install as install_corpus
from lore_daemon.sim.data import Dataset
from lore_daemon.sim.entities import Entities
from lore_daemon.sim.faults import FaultBook, rate_limit_response, status_response
from lore_daemon.sim.mutations import Mutator
from lore_daemon.sim.ratelimit import RateLimiter, throttled_response
from lore_daemon.sim.reqlog import RequestLog
from lore_daemon.sim.routes import Api, auth_kind, presented_token
from lore_daemon.sim.wire import Request, Response, json_response

log = logging.getLogger(__name__)
CONTROL_PREFIX = "/_sim/"


@dataclass(slots=True)
class Reply:
    """What the HTTP layer must do: write ``response`` normally, or misbehave as ``mode`` says."""

    response: Response | None
    mode: str = "ok"  # ok | status | rate_limit | malformed | truncate | trickle | drop | timeout | control
    entry: dict[str, Any] | None = None  # the log entry to finish once the reply is on the wire
    hold_s: float = 0.0
    interval_ms: int = 0  # trickle: one body byte every interval_ms


class SimApp:
    """Data set, overlays, faults, options and the request log of one simulator instance."""

    def __init__(self, config: SimConfig, base_url: str) -> None:
        self.config = config
        self.base_url = base_url
        self.pid = os.getpid()
        self.clock = SimClock()
        self.dataset = Dataset(config, base_url)
        if config.corpus:
            install_corpus(self.dataset)
        self.entities = Entities(self.dataset)
        self.options = RuntimeOptions(total_threshold=config.total_threshold)
        self.api = Api(config, self.dataset, self.entities, self.options)
        self.mutator = Mutator(self.dataset, self.clock)
        self.throttle = RateLimiter(self.clock)
        self.faults = FaultBook()
        self.faults.global_latency_ms = config.latency_ms
        self.log = RequestLog(config.log_limit)
        self.control = ControlApi(self)

    async def dispatch(self, req: Request) -> Reply:
        if req.path.startswith(CONTROL_PREFIX):
            return Reply(self.control.handle(req), "control")
        entry = self.log.start(req, auth_kind(req))
        firing = self.faults.fire(req.method, req.path)
        delay_ms = self.faults.latency_for(req.path)
        if firing is not None:
            entry["fault_id"] = firing.rule_id
            delay_ms += firing.latency_ms
            if firing.mutation is not None:
                self._mutate(firing.mutation)
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        if firing is not None:
            if firing.kind in ("timeout", "drop"):
                hold = firing.hold_s if firing.hold_s is not None else self.config.timeout_hold_s
                return Reply(None, firing.kind, entry, hold)
            if firing.kind == "rate_limit":
                return Reply(rate_limit_response(firing, self.clock.now_ms() / 1000), "rate_limit", entry)
            if firing.kind == "status" and firing.status is not None:
                return Reply(status_response(firing.status), "status", entry)
        verdict = None
        if presented_token(req) == self.config.token:
            opts = self.options
            verdict = self.throttle.check(opts.rate_limit, opts.rate_limit_period_s, opts.rate_limit_headers)
            if verdict is not None and not verdict.allowed:
                return Reply(throttled_response(verdict), "throttled", entry)
        response = self._api_response(req)
        if verdict is not None:
            response.headers.extend(verdict.headers)
        if firing is not None and firing.kind == "malformed":
            broken = response.body[: max(1, len(response.body) // 2)] + b"<!-- upstream reset -->"
            return Reply(Response(200, broken, response.headers), "malformed", entry)
        if firing is not None and firing.kind in ("truncate", "trickle"):
            return Reply(response, firing.kind, entry, interval_ms=firing.interval_ms)
        return Reply(response, "ok", entry)

    def _api_response(self, req: Request) -> Response:
        try:
            return self.api.handle(req)
        except Exception:
            log.exception("simulator handler failed for %s %s", req.method, req.path)
            return json_response(500, {"message": "500 Internal Server Error"})

    def _mutate(self, mutation: dict[str, Any]) -> None:
        """A fault's mutation; a bad one is recorded in stats rather than failing the request."""
        args = dict(mutation)
        op = str(args.pop("op", ""))
        try:
            self.mutator.apply(op, args)
        except LoreError as exc:
            self.log.mutation_errors.append(str(exc))
