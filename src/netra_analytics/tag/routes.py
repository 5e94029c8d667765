"""Serving the browser tag, taking its heartbeat, and the demo page.

The tag is served minified at a versioned path that never changes content (cached for a
year, `immutable`), and at an unversioned path that follows new releases (cached 5 minutes).
The version is read from the tag's own source, so there is one place to change it.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse

from netra_analytics.service import Service

router = APIRouter(tags=["browser tag"])

JAVASCRIPT = "text/javascript; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"
CONTAINER = r"^(GTM-[A-Z0-9]{4,12}|none)$"  # GTM's container id form, or a tag outside GTM
SEMVER = r"^\d{1,3}\.\d{1,3}\.\d{1,3}$"


@cache
def asset(name: str) -> str:
    return (resources.files("netra_analytics.tag") / name).read_text()


@cache
def tag_version() -> str:
    found = re.search(r"var VERSION = '(\d+\.\d+\.\d+)'", asset("netra-analytics.js"))
    if found is None:
        raise RuntimeError("netra-analytics.js does not declare its VERSION")
    return found.group(1)


def _script(name: str, cache_control: str) -> Response:
    return Response(asset(name), media_type=JAVASCRIPT, headers={"cache-control": cache_control})


@router.get(
    "/tag/{version}/netra-analytics.js",
    summary="The browser tag, minified, at a versioned path (cached for a year)",
    response_class=Response,
    responses={404: {"description": "Not the version served here"}},
)
async def versioned_tag(version: str) -> Response:
    if version != tag_version():
        raise HTTPException(404, f"tag version {version} is not served here; {tag_version()} is")
    return _script("netra-analytics.min.js", IMMUTABLE)


LATEST = {  # served name -> file
    "netra-analytics.js": "netra-analytics.min.js",
    "netra-analytics.src.js": "netra-analytics.js",
}


@router.get(
    "/tag/{name}",
    summary="The latest browser tag: minified (netra-analytics.js) or readable "
    "(netra-analytics.src.js), cached 5 minutes",
    response_class=Response,
    responses={404: {"description": "No such file"}},
)
async def latest_tag(name: str) -> Response:
    if name not in LATEST:
        raise HTTPException(404, f"no {name} here; one of {', '.join(LATEST)}")
    return _script(LATEST[name], SHORT)


@router.post(
    "/api/analytics/tag/heartbeat",
    status_code=204,
    summary="The browser tag reports that it runs (GTM tag firing verification)",
    description="Sent by the tag when it starts and every 5 minutes while the page is visible, "
    "once consent is given; `/health/ready` shows the last heartbeat per GTM container.",
)
async def heartbeat(
    request: Request,
    container: Annotated[str, Query(pattern=CONTAINER)],
    version: Annotated[str, Query(pattern=SEMVER)],
) -> Response:
    service: Service = request.app.state.service
    await service.live.tag_fired(container, version, int(service.clock() * 1000))
    return Response(status_code=204)


DEMO_SCRIPTS = frozenset({"demo-config.js", "demo.js"})  # files: the page runs no inline script


@router.get("/demo/{name}", include_in_schema=False)
async def demo_script(request: Request, name: str) -> Response:
    service: Service = request.app.state.service
    if not service.settings.embedded or name not in DEMO_SCRIPTS:
        raise HTTPException(404, f"no {name} here")
    return _script(name, "no-store")


@router.get("/demo", include_in_schema=False)
async def demo(request: Request) -> HTMLResponse:
    service: Service = request.app.state.service
    if not service.settings.embedded:
        raise HTTPException(404, "the demo page is served in embedded mode only")
    page = asset("demo.html").replace("{{TAG_SRC}}", f"/tag/{tag_version()}/netra-analytics.js")
    return HTMLResponse(page, headers={"cache-control": "no-store"})
