"""The HTTP application: routes from each part of the service, errors mapped in one place.

FastAPI serves the documented JSON endpoints and `/docs`; the events endpoint is a plain
Starlette route (measured: FastAPI's request machinery costs it about half its throughput), and
its request schema, generated from the taxonomy, is added to the OpenAPI document by hand.

Every error reply is JSON: `{"error": ..., "message": ...}`, or FastAPI's `{"detail": ...}` for
422s and the routes' HTTPExceptions; none carries SQL or a traceback. The layers, outermost
first:

    HotRoutes               POST /api/analytics/events, answered in front of all of the below
                            with what each of our layers does, in one layer (`NetraApp`);
                            every other request goes on
    ServerErrorMiddleware   Starlette's last resort (plain text, no CORS): only for an
                            exception after a reply has started
    RequestObserver         request id (X-Request-ID on every reply), access log line, API
                            metrics and report/panel timings (`request_log`)
    SecurityHeaders         nosniff, referrer policy, no framing, CSP: on every reply
    BrowserCORS             CORS headers on ingestion and the tag only (`CORS_PATHS`), errors
                            included; other routes answer no CORS at all
    BoundedHeaders          431 for headers over MAX_HEADER_BYTES (in all) or MAX_HEADER_VALUE
    CatchUnexpected         any exception a route lets out -> 500 InternalError, logged
    BodyLimits              a body not received in time -> 408, too many bodies in flight
                            -> 503 (`http_limits`)
    ExceptionMiddleware     NetraError -> its status (`_error_response`); HTTPException, 422
    auth.guard              every FastAPI route: 401/403 outside `auth.PUBLIC` (`auth/access`)
    routes
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netra_analytics import __version__, auth, health, metrics
from netra_analytics.auth import routes as auth_routes
from netra_analytics.config import Settings
from netra_analytics.dashboards import routes as dashboard_routes
from netra_analytics.dashboards.catalog import PANELS_BY_ID
from netra_analytics.errors import (
    NetraError,
    SpoolFull,
    StoreError,
    StoreUnavailable,
    WriterDown,
)
from netra_analytics.hardening import (
    CORS_PATHS,
    BoundedHeaders,
    BrowserCORS,
    SecurityHeaders,
    browser_cors,
    header_problem,
    header_too_large,
    secured,
)
from netra_analytics.http_limits import (
    CONNECTION_CLOSE,
    BodyBudget,
    BodyLimitExceeded,
    BodyLimits,
)
from netra_analytics.ingest.process import IMPORT
from netra_analytics.ingest.routes import post_events, post_import
from netra_analytics.interpreter import tune_for_serving
from netra_analytics.loadtest import routes as loadtest_routes
from netra_analytics.logs import RateLimitedLog, current_request_id
from netra_analytics.privacy import routes as privacy_routes
from netra_analytics.privacy.iphash import load_or_create_secret
from netra_analytics.reports import activity, engagement, journeys, prompts, spend
from netra_analytics.request_log import REQUEST_ID_HEADER, Observations, RequestObserver
from netra_analytics.service import Service
from netra_analytics.store import Store
from netra_analytics.tag import routes as tag_routes
from netra_analytics.taxonomy import json_schema

log = logging.getLogger(__name__)

SESSION_SECRET_FILE = "session.key"  # noqa: S105 (a file name, not a secret)
EVENTS_PATH = "/api/analytics/events"
LOGGED_DETAIL_CHARS = 300  # of a store error's text, in its one log line
INTERNAL_MESSAGE = "an unexpected error occurred; it has been logged"


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Callable[[], float] = time.time,
    serving: bool = False,
) -> NetraApp:
    """The application. `serving`: the process serves it until it exits, so once started its
    interpreter is tuned for that (`interpreter.tune_for_serving`)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(settings, store=store, clock=clock)
        app.state.service = service
        await service.start()
        monitor = health.Monitor(service, availability)
        app.state.monitor = monitor
        monitoring = asyncio.create_task(monitor.run(), name="monitor")
        if store is None and settings.embedded and service.store is not None:
            host = "localhost" if settings.host in {"0.0.0.0", "::"} else settings.host
            dashboard = f"http://{host}:{settings.port}/"
            await asyncio.to_thread(auth.bootstrap_admin_key, service.store, dashboard)
        if serving:
            log.debug("interpreter tuned for serving", extra={"frozen": tune_for_serving()})
        try:
            yield
        finally:
            monitoring.cancel()
            await monitor.stop()
            await service.stop()

    app = NetraApp(
        title="Netra Analytics",
        version=__version__,
        description="Frontend analytics and event capture for AI products.",
        lifespan=lifespan,
        dependencies=[Depends(auth.guard)],
        # FastAPI's native OpenTelemetry asks the global providers on every request (~4 % of a
        # worker's time at one event per request, issue 17); this service exports its own
        # Prometheus metrics and request log and configures no OpenTelemetry provider.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )

    def current_store() -> Store | None:
        service: Service | None = getattr(app.state, "service", None)
        return None if service is None else service.store

    def session_secret() -> bytes:
        return load_or_create_secret(
            settings.session_secret, settings.data_dir, SESSION_SECRET_FILE
        )

    app.state.auth = auth.Authenticator(settings, current_store, session_secret)
    body_budget = BodyBudget(
        timeout=settings.request_timeout_seconds,
        max_inflight_bytes=settings.max_inflight_body_bytes,
    )
    # Innermost of ours: its own exceptions (raised from `receive` into a route) are answered
    # by it, never seen by CatchUnexpected as a bug.
    app.add_middleware(BodyLimits, budget=body_budget)
    # Added before the CORS middleware, so that it sits inside it: its 500s carry CORS headers.
    app.add_middleware(CatchUnexpected)
    app.add_middleware(BoundedHeaders)
    app.add_middleware(BrowserCORS, origins=settings.cors_origins)
    app.add_middleware(SecurityHeaders)
    app.state.client_errors = RateLimitedLog(log)
    app.add_exception_handler(NetraError, _error_response)  # type: ignore[arg-type]
    app.add_route(EVENTS_PATH, post_events, methods=["POST"])  # for the docs (`HotRoutes`)
    app.add_route("/api/analytics/import", post_import, methods=["POST"])
    app.add_route("/health", health.live, methods=["GET"])
    app.add_route("/health/ready", health.ready, methods=["GET"])
    app.add_route("/metrics", _metrics, methods=["GET"])
    app.include_router(engagement.router)
    app.include_router(activity.router)
    app.include_router(prompts.router)
    app.include_router(spend.router)
    app.include_router(journeys.router)
    app.include_router(tag_routes.router)
    app.include_router(privacy_routes.router)
    app.include_router(auth_routes.router)
    app.include_router(dashboard_routes.router)
    app.include_router(loadtest_routes.router)

    schema = json_schema()

    @app.get("/api/analytics/schema", summary="The event taxonomy as JSON Schema")
    async def event_schema() -> dict[str, Any]:
        return schema

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes,
                                   description=app.description)  # fmt: skip
            document["paths"]["/api/analytics/events"] = _events_operation(schema)
            document["paths"]["/api/analytics/import"] = _import_operation(schema)
            auth.document_security(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # Outermost of ours, added last: it needs the routes (plain Starlette routes leave no
    # `route` in the scope under FastAPI's router; their paths are fixed, so known by name).
    availability = metrics.Availability()
    observations = Observations(
        access_log_per_second=settings.access_log_per_second,
        panel_ids=PANELS_BY_ID.keys(),
        fixed_routes=[r.path for r in app.routes if isinstance(r, Route) and "{" not in r.path],
        availability=availability,
    )
    app.add_middleware(RequestObserver, observations=observations)
    app.hot_routes = HotRoutes(
        {("POST", EVENTS_PATH): post_events},
        observations=observations,
        cors_origins=settings.cors_origins,
        body_budget=body_budget,
    )
    return app


def _error_reply(
    status: int, error: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """An error reply: JSON `{"error": <class of error>, "message": <for people>}`."""
    body = {"error": error, "message": message}
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


async def _error_response(request: Request, exc: NetraError) -> Response:
    """A NetraError as its status code. The store's errors answer a fixed message (theirs
    quotes the SQL ClickHouse refused); the detail is logged once, on one truncated line."""
    if isinstance(exc, StoreError):
        detail = " ".join(str(exc).split())
        log.warning(
            "store error answered %d", exc.status_code,
            extra={"path": request.url.path, "error": detail[:LOGGED_DETAIL_CHARS]},
        )  # fmt: skip
    elif exc.status_code < 500:
        # What clients cause: once a minute per kind, with a count of the rest.
        request.app.state.client_errors.log(
            logging.INFO, f"{exc.status_code} {type(exc).__name__} {request.url.path}",
            "client error answered %d", exc.status_code,
            extra={"path": request.url.path, "error": str(exc)[:LOGGED_DETAIL_CHARS]},
        )  # fmt: skip
    retry = isinstance(exc, SpoolFull | StoreUnavailable)
    headers = {"retry-after": "5"} if retry else None
    if isinstance(exc, WriterDown):
        headers = {"retry-after": str(exc.retry_after)}
    return _error_reply(
        exc.status_code,
        type(exc).__name__,
        exc.public_message if exc.public_message is not None else str(exc),
        headers,
    )


class NetraApp(FastAPI):
    """FastAPI, with its hot routes (`HotRoutes`) answered in front of its middleware stack."""

    hot_routes: HotRoutes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.hot_routes
        if hot is not None and scope["type"] == "http":
            endpoint = hot.routes.get((scope["method"], scope["path"]))
            if endpoint is not None:
                scope["app"] = self
                await hot.serve(endpoint, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


class HotRoutes:
    """Routes answered in one layer, in front of FastAPI's and the app's middleware stacks
    (`NetraApp`), with what those layers do for them, in their order and from their own code:
    the request id, metrics and access log (`request_log.Observations`), security headers
    (`hardening.secured`), CORS (Starlette's CORSMiddleware: a POST is a simple request),
    header bounds (431), a 500 for an unexpected exception (`CatchUnexpected.answer`), and body
    limits (`http_limits.BodyBudget`, shared with the middleware). What an endpoint raises is
    answered by the app's exception handler for its class, as Starlette's ExceptionMiddleware
    does (NetraError: `_error_response`; HTTPException: FastAPI's `{"detail"}`).

    Why: every layer is a coroutine and a wrapped `send` per request. In process, a 1-event
    request took ~240 µs of CPU through the eleven layers and ~165 µs in the endpoint alone;
    with two workers the service acknowledged 14 % more requests per second with no layer at
    all (an upper bound), and 5.5 % more with this one (issue 17; bench/README.md, seventh
    pass).

    `routes`: (method, path) -> a plain Starlette endpoint; requests to other methods of the
    paths (OPTIONS for CORS preflight, a wrong method's 405) take the usual way."""

    def __init__(
        self,
        routes: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]],
        *,
        observations: Observations,
        cors_origins: tuple[str, ...],
        body_budget: BodyBudget,
    ) -> None:
        self.routes = routes
        self.observations = observations
        self.cors = browser_cors(_no_app, cors_origins)
        self.body_budget = body_budget
        self.unexpected = CatchUnexpected(_no_app)

    async def serve(
        self,
        endpoint: Callable[[Request], Awaitable[Response]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        """Answers one request to `endpoint` (see the class)."""
        begun = time.perf_counter()
        observations = self.observations
        request_id = observations.request_id(scope)
        token = current_request_id.set(request_id)
        id_header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        request_headers = Headers(scope=scope)
        cors = str(scope["path"]).startswith(CORS_PATHS)
        guard = self.body_budget.guard(receive)
        status = 500  # what the server answers if this raises before replying
        size = 0
        started = False

        async def sending(message: Message) -> None:
            nonlocal status, size, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = secured(message.get("headers", ()))
                if guard.failed is not None:  # a handler answered a body refusal: still close
                    headers.append(CONNECTION_CLOSE)
                headers.append(id_header)
                message = {**message, "headers": headers}
                if cors:  # Starlette's answer to a simple request (its own code: Vary, origins)
                    await self.cors.send(message, send, request_headers)
                    return
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            problem = header_problem(scope["headers"])
            if problem is not None:
                await header_too_large(problem)(scope, receive, sending)
                return
            try:
                await self._answer(endpoint, scope, guard.receive, sending)
            except BodyLimitExceeded as exc:
                await self.body_budget.refuse(scope, sending, exc, started)
        except Exception as exc:
            if started:
                raise
            await self.unexpected.answer(scope, receive, sending, exc)
        finally:
            guard.close()
            current_request_id.reset(token)
            observations.observe(scope, status, size, time.perf_counter() - begun, request_id)

    @staticmethod
    async def _answer(
        endpoint: Callable[[Request], Awaitable[Response]],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except Exception as exc:
            handlers = scope["app"].exception_handlers
            handler = next((handlers[c] for c in type(exc).__mro__ if c in handlers), None)
            if handler is None:
                raise
            answer = handler(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)


async def _no_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The inner app of the layers `HotRoutes` borrows methods from (never called)."""
    raise RuntimeError("not an app")


class CatchUnexpected:
    """Turns any exception a route (or an exception handler) lets out into a JSON 500
    `InternalError` with a fixed message, and logs it with its traceback (a bug to fix): once
    a minute per exception type and path, as requests may trigger it by the thousand. It
    sits inside CORSMiddleware, so that the reply carries the route's CORS headers; a browser
    otherwise sees a network error. An exception after the reply has started cannot be
    answered: it goes on to the server, which closes the connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = RateLimitedLog(log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if started:
                raise
            await self.answer(scope, receive, send, exc)

    async def answer(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        """Logs `exc` (rate-limited, with its traceback) and answers the JSON 500."""
        path = scope.get("path", "")
        self.log.log(
            logging.ERROR, f"{type(exc).__name__} {path}",
            "unexpected %s answered 500", type(exc).__name__,
            extra={"path": path}, exc_info=exc,
        )  # fmt: skip
        await _error_reply(500, "InternalError", INTERNAL_MESSAGE)(scope, receive, send)


async def _metrics(request: Request) -> Response:
    """`GET /metrics`: Prometheus's text format; every process's values when
    PROMETHEUS_MULTIPROC_DIR is set (`metrics.exposition`). Reads gauges only (kept current by
    `health.Monitor`): a scrape never waits for the store."""
    metrics.SPOOL_BACKLOG.set(request.app.state.service.spool.backlog_bytes)
    body, content_type = await asyncio.to_thread(metrics.exposition)
    return Response(body, media_type=content_type)


def _events_operation(schema: dict[str, Any]) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"type": "object"}}}}
    return {
        "post": {
            "summary": "Ingest a batch of events from the browser",
            "description": (
                "Valid events are stored, invalid ones are reported by index in the reply and "
                "kept in `rejected_events`. 202 means every accepted event is on disk."
            ),
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
            "responses": {
                "202": {"description": "Accepted (possibly with per-event rejections)", **error},
                "400": {"description": "Malformed body or envelope", **error},
                "408": {"description": "Head or body not received in time", **error},
                "413": {"description": "Body over 1 MiB or more than 500 events", **error},
                "415": {"description": "Not JSON", **error},
                "429": {"description": "Every valid event was over the user's limit", **error},
                "503": {
                    "description": (
                        "Spool full, the batch writer keeps crashing, or too many bodies in "
                        "flight; retry later"
                    ),
                    **error,
                },
            },
        }
    }


def _import_operation(schema: dict[str, Any]) -> dict[str, Any]:
    """The historical import's operation (`ingest.routes.post_import`)."""
    operation = _events_operation(import_schema(schema))["post"]
    responses = operation["responses"]
    responses["413"] = {**responses["413"], "description": "Body over 8 MiB or 5,000 events"}
    responses["429"] = {**responses["429"], "description": "Over the import's events per second"}
    return {
        "post": {
            **operation,
            "summary": "Import historical events (backfills, server-side sources; admin only)",
            "description": (
                "The events body; each event needs a timestamp, kept as sent back to 90 days "
                "(older: `beyond_retention`), and may carry its own `context` with the browser's "
                "`user_agent`. Event ids make a re-run a no-op. See the README."
            ),
        }
    }


def import_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The import's body as JSON Schema, from the events body's (`taxonomy.json_schema`)."""
    body = copy.deepcopy(schema)
    body["title"] = "Netra Analytics historical import"
    body["required"] = ["events"]
    body["properties"]["events"]["maxItems"] = IMPORT.max_events
    event = body["$defs"]["Event"]
    event["required"] = [*event["required"], "timestamp"]
    event["properties"]["context"] = {
        "allOf": [{"$ref": "#/$defs/Context"}],
        "properties": {"user_agent": {"type": "string", "maxLength": 256}},
    }
    body["properties"]["context"] = event["properties"]["context"]
    return body
