"""The HTTP application: routes from each part of the service, errors mapped in one place.

FastAPI serves the documented JSON endpoints and `/docs`; the events endpoint is a plain
Starlette route (measured: FastAPI's request machinery costs it about half its throughput), and
its request schema, generated from the taxonomy, is added to the OpenAPI document by hand.
"""

from __future__ import annotations

import contextlib
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

from netra_analytics import __version__, health, metrics
from netra_analytics.config import Settings
from netra_analytics.errors import NetraError, SpoolFull
from netra_analytics.ingest.routes import post_events
from netra_analytics.reports import activity, engagement, journeys, prompts, spend
from netra_analytics.service import Service
from netra_analytics.store import Store
from netra_analytics.tag import routes as tag_routes
from netra_analytics.taxonomy import json_schema


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
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST"],
        allow_headers=["content-type"],
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


async def _error_response(request: Request, exc: NetraError) -> Response:
    body = {"error": type(exc).__name__, "message": str(exc)}
    headers = {"retry-after": "5"} if isinstance(exc, SpoolFull) else None
    return Response(orjson.dumps(body), exc.status_code, headers, media_type="application/json")


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
