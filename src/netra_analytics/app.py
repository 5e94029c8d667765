"""The HTTP application: routes from each part of the service, errors mapped in one place.

FastAPI serves the documented JSON endpoints and `/docs`; the events endpoint is a plain
Starlette route (measured: FastAPI's request machinery costs it about half its throughput), and
its request schema, generated from the taxonomy, is added to the OpenAPI document by hand.

Every error reply is JSON: `{"error": ..., "message": ...}`, or FastAPI's `{"detail": ...}` for
422s and the routes' HTTPExceptions; none carries SQL or a traceback. The layers, outermost
first:

    ServerErrorMiddleware   Starlette's last resort (plain text, no CORS): only for an
                            exception after a reply has started
    CORSMiddleware          adds the CORS headers to every reply below it, errors included
    CatchUnexpected         any exception a route lets out -> 500 InternalError, logged
    ExceptionMiddleware     NetraError -> its status (`_error_response`); HTTPException, 422
    routes
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from netra_analytics import __version__, health, metrics
from netra_analytics.config import Settings
from netra_analytics.dashboards import routes as dashboard_routes
from netra_analytics.errors import NetraError, SpoolFull, StoreError, StoreUnavailable
from netra_analytics.ingest.routes import post_events
from netra_analytics.reports import activity, engagement, journeys, prompts, spend
from netra_analytics.service import Service
from netra_analytics.store import Store
from netra_analytics.tag import routes as tag_routes
from netra_analytics.taxonomy import json_schema

log = logging.getLogger(__name__)

LOGGED_DETAIL_CHARS = 300  # of a store error's text, in its one log line
INTERNAL_MESSAGE = "an unexpected error occurred; it has been logged"


def create_app(
    settings: Settings, *, store: Store | None = None, clock: Callable[[], float] = time.time
) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(settings, store=store, clock=clock)
        app.state.service = service
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="Netra Analytics",
        version=__version__,
        description="Frontend analytics and event capture for AI products.",
        lifespan=lifespan,
    )
    # Added first, so that it sits inside CORSMiddleware: its 500s carry the CORS headers.
    app.add_middleware(CatchUnexpected)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST"],
        allow_headers=["content-type", "content-encoding"],
        expose_headers=[
            "retry-after",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ],
        max_age=86400,
    )
    app.add_exception_handler(NetraError, _error_response)  # type: ignore[arg-type]
    app.add_route("/api/analytics/events", post_events, methods=["POST"])
    app.add_route("/health", health.live, methods=["GET"])
    app.add_route("/health/ready", health.ready, methods=["GET"])
    app.add_route("/metrics", _metrics, methods=["GET"])
    app.include_router(engagement.router)
    app.include_router(activity.router)
    app.include_router(prompts.router)
    app.include_router(spend.router)
    app.include_router(journeys.router)
    app.include_router(tag_routes.router)
    app.include_router(dashboard_routes.router)

    schema = json_schema()

    @app.get("/api/analytics/schema", summary="The event taxonomy as JSON Schema")
    async def event_schema() -> dict[str, Any]:
        return schema

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes,
                                   description=app.description)  # fmt: skip
            document["paths"]["/api/analytics/events"] = _events_operation(schema)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
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
    retry = isinstance(exc, SpoolFull | StoreUnavailable)
    return _error_reply(
        exc.status_code,
        type(exc).__name__,
        exc.public_message if exc.public_message is not None else str(exc),
        {"retry-after": "5"} if retry else None,
    )


class CatchUnexpected:
    """Turns any exception a route (or an exception handler) lets out into a JSON 500
    `InternalError` with a fixed message, and logs it with its traceback (a bug to fix). It
    sits inside CORSMiddleware, so that the reply carries the route's CORS headers; a browser
    otherwise sees a network error. An exception after the reply has started cannot be
    answered: it goes on to the server, which closes the connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            log.error(
                "unexpected %s answered 500", type(exc).__name__,
                extra={"path": scope.get("path", "")}, exc_info=exc,
            )  # fmt: skip
            await _error_reply(500, "InternalError", INTERNAL_MESSAGE)(scope, receive, send)


async def _metrics(request: Request) -> Response:
    metrics.SPOOL_BACKLOG.set(request.app.state.service.spool.backlog_bytes)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


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
                "413": {"description": "Body over 1 MiB or more than 500 events", **error},
                "415": {"description": "Not JSON", **error},
                "429": {"description": "Every valid event was over the user's limit", **error},
                "503": {"description": "Spool full; retry later", **error},
            },
        }
    }
