"""Every request's id, access log line and API metrics, in one pure-ASGI middleware.

- Request id: a sane incoming `X-Request-ID` (1-64 characters of letters, digits and
  `._:-`; what proxies and tracing send) is kept, anything else replaced by a new one: this
  process's random prefix and a counter (no system call per request; unique per process, and
  across processes by the prefix). Every reply carries it as `X-Request-ID`, errors included,
  and every log line written while the request runs carries it as `request_id`.
- Access log (`ANALYTICS_ACCESS_LOG`): one JSON line per request with `method`, `route` (the
  route's template, never the path: paths carry user ids), `status`, `duration_ms`, `bytes`
  (of the reply body) and `request_id`; never the query string, the body or the client's
  address. At most `lines_per_second` lines a second per process (the rest are counted and the
  next line says how many were left out, `suppressed`), so its cost is bounded whatever the
  traffic: a line costs 13-25 µs, which at 5,000 requests a second would be up to an eighth of
  a core. The rest of this middleware costs 3.6 µs per request (README, "Health and metrics").
  Off by default (errors are logged anyway, with the request's id).
- Metrics: `netra_api_requests_total{route, status_class}`, the 5-minute availability
  (`metrics.Availability`), and `netra_query_performance_seconds{kind, name}` for the report
  and panel routes (by their own id; a panel by its catalog id, so that a client cannot make
  up label values).

Per process: the availability window and the log budget are this process's.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable, Collection
from typing import Any

from prometheus_client.metrics import Counter as _Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netra_analytics import metrics
from netra_analytics.logs import current_request_id

log = logging.getLogger("netra_analytics.access")

REQUEST_ID_HEADER = b"x-request-id"
_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
UNMATCHED = "unmatched"  # the route label of a request no route took (404s of any path)
REPORTS_PREFIX = "/api/analytics/reports/"
PANEL_ROUTE = "/api/analytics/panels/{panel_id}"


class RequestIds:
    """New request ids: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(6)
        self._counter = itertools.count(1)

    def new(self) -> str:
        return f"{self._prefix}-{next(self._counter):x}"


def sane_request_id(value: bytes) -> str | None:
    """`value` as a request id if it is 1-64 of `[A-Za-z0-9._:-]`, else None."""
    return value.decode("ascii") if _SANE_ID.fullmatch(value) else None


class LogBudget:
    """At most `per_second` admissions per wall-clock second; counts what it refuses."""

    def __init__(self, per_second: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self._clock = clock
        self._second = -1
        self._used = 0
        self.suppressed = 0

    def admit(self) -> int | None:
        """None when over budget (counted); else how many were refused since the last admit."""
        second = int(self._clock())
        if second != self._second:
            self._second, self._used = second, 0
        if self._used >= self.per_second:
            self.suppressed += 1
            return None
        self._used += 1
        refused, self.suppressed = self.suppressed, 0
        return refused


class Observations:
    """What every request's observation shares in a process: new ids, the access log's budget,
    the API metrics' children and the availability window (`RequestObserver`, and the app's
    hot routes, which answer in front of the middleware: `app.HotRoutes`).

    `access_log_per_second`: 0 logs nothing; `panel_ids`: the panels whose timing is kept;
    `fixed_routes`: paths of routes without parameters, the label of a request to one when
    the router left no `route` in the scope.
    """

    def __init__(
        self,
        *,
        access_log_per_second: int,
        panel_ids: Collection[str] = (),
        fixed_routes: Collection[str] = (),
        availability: metrics.Availability | None = None,
    ) -> None:
        self.ids = RequestIds()
        self.budget = LogBudget(access_log_per_second) if access_log_per_second > 0 else None
        self.panel_ids = frozenset(panel_ids)
        self.fixed_routes = frozenset(fixed_routes)
        self.availability = availability or metrics.Availability()
        # Children of the counter by (route, status class): labels() takes a lock and builds
        # a tuple per call; this dict holds at most routes x 5.
        self._counters: dict[tuple[str, int], _Counter] = {}

    def request_id(self, scope: Scope) -> str:
        """The request's sane `X-Request-ID`, else a new id."""
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                request_id = sane_request_id(value)
                if request_id is not None:
                    return request_id
                break
        return self.ids.new()

    def observe(
        self, scope: Scope, status: int, size: int, seconds: float, request_id: str
    ) -> None:
        """Counts the answered request (route, status class, availability; a report's or
        panel's time) and writes its access log line, within the budget. `size`: bytes of
        the reply's body; `seconds`: from the request's start to its end."""
        route_object: Any = scope.get("route")
        route = getattr(route_object, "path", None)
        if route is None:
            path = scope["path"]
            route = path if path in self.fixed_routes else UNMATCHED
        status_class = min(5, max(1, status // 100))
        key = (route, status_class)
        counter = self._counters.get(key)
        if counter is None:
            counter = metrics.API_REQUESTS.labels(route, f"{status_class}xx")
            self._counters[key] = counter
        counter.inc()
        self.availability.record(status_class == 5)
        if status_class != 4:  # a 4xx was refused before any query ran
            if route.startswith(REPORTS_PREFIX):
                metrics.QUERY_PERFORMANCE.labels("report", route[len(REPORTS_PREFIX) :]).observe(
                    seconds
                )
            elif route == PANEL_ROUTE:
                panel = scope.get("path_params", {}).get("panel_id")
                if panel in self.panel_ids:
                    metrics.QUERY_PERFORMANCE.labels("panel", panel).observe(seconds)
        if self.budget is not None:
            suppressed = self.budget.admit()
            if suppressed is not None:
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                        "bytes": size,
                        "request_id": request_id,
                        "suppressed": suppressed,
                    },
                )


class RequestObserver:
    """The middleware (outermost of the app's own, `app.py`): see the module's docstring."""

    def __init__(self, app: ASGIApp, *, observations: Observations) -> None:
        self.app = app
        self.observations = observations

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = self.observations.request_id(scope)
        token = current_request_id.set(request_id)
        header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500  # what the server answers if the app raises before replying
        size = 0

        async def sending(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            current_request_id.reset(token)
            self.observations.observe(
                scope, status, size, time.perf_counter() - started, request_id
            )
