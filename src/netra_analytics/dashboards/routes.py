"""The built-in dashboard: its pages, its static files, the catalog and the panel endpoints.

Every route is on `router` (one APIRouter), so that access control can be added to all of them
in one place. The pages are one HTML shell (`static/page.html`, no inline script or style) that
loads plain ES modules and the vendored Apache ECharts; the modules read the catalog from
`/api/analytics/dashboards` and each panel from `/api/analytics/panels/<id>`.
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Annotated, Any
from weakref import WeakKeyDictionary

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse

from netra_analytics.dashboards.catalog import (
    DASHBOARDS,
    DASHBOARDS_BY_NAME,
    PANELS,
    PANELS_BY_ID,
    SHAPES,
    Filter,
    LiveQuery,
    Panel,
)
from netra_analytics.dashboards.panels import Table, Window, compute, run_sql
from netra_analytics.reports.common import (
    FIRST_DATE,
    LAST_DATE,
    cached,
    invalid,
    long_range,
    zone,
)
from netra_analytics.service import Service

router = APIRouter(tags=["dashboards"])

PANEL_TIMEOUT_SECONDS = 10.0  # a panel slower than this answers 503, not a hung page
MAX_RANGE_DAYS = 366  # the reports' longest range
DEFAULT_RANGE = timedelta(hours=24)
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".LICENSE": "text/plain; charset=utf-8",
    ".NOTICE": "text/plain; charset=utf-8",
}
STATIC_CACHE = "public, max-age=300"
FromTime = Annotated[str | None, Query(alias="from", max_length=40)]
ToTime = Annotated[str | None, Query(alias="to", max_length=40)]
Zone = Annotated[str, Query(max_length=64)]
Value = Annotated[str, Query(max_length=256)]


def _static_root() -> Traversable:
    return resources.files("netra_analytics.dashboards") / "static"


@cache
def static_files() -> dict[str, tuple[bytes, str]]:
    """Every file the pages load, by its path under static/ (the allow-list of what is served)."""
    found: dict[str, tuple[bytes, str]] = {}
    todo: list[tuple[str, Traversable]] = [("", _static_root())]
    while todo:
        prefix, folder = todo.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                todo.append((f"{prefix}{entry.name}/", entry))
                continue
            suffix = "." + entry.name.rsplit(".", 1)[-1]
            if suffix in STATIC_TYPES:
                found[prefix + entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
    return found


def page(title: str, dashboard: str) -> HTMLResponse:
    shell = static_files()["page.html"][0].decode()
    body = shell.replace("{{title}}", html.escape(title)).replace(
        "{{dashboard}}", html.escape(dashboard, quote=True)
    )
    return HTMLResponse(body, headers={"cache-control": "no-cache"})


@router.get("/", include_in_schema=False)
async def index() -> HTMLResponse:
    """The index of the dashboards."""
    return page("Netra Analytics dashboards", "")


@router.get("/dashboards/static/{path:path}", include_in_schema=False)
async def static(path: str) -> Response:
    found = static_files().get(path)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no file {path!r}")
    content, media_type = found
    return Response(content, media_type=media_type, headers={"cache-control": STATIC_CACHE})


@router.get("/dashboards/{name}", include_in_schema=False)
async def dashboard(name: str) -> HTMLResponse:
    board = DASHBOARDS_BY_NAME.get(name)
    if board is None:
        raise HTTPException(status_code=404, detail=f"no dashboard {name!r}")
    return page(f"{board.title} · Netra Analytics", board.name)


def panel_json(panel: Panel) -> dict[str, Any]:
    query = panel.query
    return {
        "id": panel.id,
        "title": panel.title,
        "description": panel.description,
        "visualisation": panel.visualisation.value,
        "columns": list(SHAPES[panel.visualisation]),
        "unit": panel.unit,
        "refresh_seconds": panel.refresh_seconds,
        "filters": [f.value for f in panel.filters],
        "click_filter": panel.click_filter.value if panel.click_filter else None,
        "wide": panel.wide,
        "better": panel.better,
        "live": isinstance(query, LiveQuery),
    }


@router.get(
    "/api/analytics/dashboards",
    summary="The dashboards and panels of the catalog, and the filters' values",
    description=(
        "`dashboards`: name, title, description, panel ids, default refresh; `panels`: per id "
        "its title, question, visualisation, unit, refresh, the filters it honours and the one "
        "a click sets. `environments` and `app_versions` seen in the range (default: the last "
        "24 hours); `events_stored`: whether the store holds any event (else the page says how "
        "to fill it). Parameters as for the panels; a bad one is 422 naming it."
    ),
)
async def catalog(
    request: Request, start: FromTime = None, end: ToTime = None, tz: Zone = "UTC"
) -> dict[str, Any]:
    window = await parse_window(request, start, end, tz, {})
    [values] = await run_sql(request, "filter_values", window)
    return {
        "dashboards": [
            {
                "name": b.name,
                "title": b.title,
                "description": b.description,
                "panels": list(b.panels),
                "refresh_seconds": b.refresh_seconds,
                "live": b.live,
            }
            for b in DASHBOARDS
        ],
        "panels": {p.id: panel_json(p) for p in PANELS},
        "environments": sorted(values["environments"]),
        "app_versions": sorted(values["app_versions"]),
        "events_stored": bool(values["events_stored"]),
    }


def parse_time(name: str, text: str | None, default: datetime) -> datetime:
    """An ISO 8601 time (`2026-11-30T10:00:00Z`; without an offset, UTC), or the 422 naming
    the parameter."""
    if text is None or text == "":
        return default
    try:
        moment = datetime.fromisoformat(text)
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # overflow: year 1 or 9999 moved by its offset
        raise invalid(name, f"{name} {text!r} is not an ISO 8601 time") from None
    if not FIRST_DATE <= moment.date() <= LAST_DATE:
        raise invalid(
            name, f"{name} is outside the dates reports cover, {FIRST_DATE} to {LAST_DATE}"
        )
    return moment


async def parse_window(
    request: Request, start: str | None, end: str | None, tz: str, filters: dict[Filter, str]
) -> Window:
    """The range [from, to) and filters of a panel request, checked: 422 naming the parameter."""
    now = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    until = parse_time("to", end, now)
    since = parse_time("from", start, until - DEFAULT_RANGE)
    if until <= since:
        raise invalid("to", "to must be after from")
    if until - since > timedelta(days=MAX_RANGE_DAYS):
        raise invalid("to", f"the range may span at most {MAX_RANGE_DAYS} days")
    if since - (until - since) < datetime(
        FIRST_DATE.year, FIRST_DATE.month, FIRST_DATE.day, tzinfo=UTC
    ):
        raise invalid(
            "from", f"from is too early: the previous period must start after {FIRST_DATE}"
        )
    await zone(request, tz)
    return Window(since, until, tz, {f: v for f, v in filters.items() if v})


# Per service: report computations in flight, shared by the panels that ask at the same time.
_IN_FLIGHT: WeakKeyDictionary[Service, dict[str, asyncio.Task[Any]]] = WeakKeyDictionary()


def sharer(request: Request) -> Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]:
    service: Service = request.app.state.service
    running = _IN_FLIGHT.setdefault(service, {})

    async def shared(key: str, make: Callable[[], Awaitable[Any]]) -> Any:
        task = running.get(key)
        if task is None:
            task = asyncio.ensure_future(make())
            running[key] = task
            task.add_done_callback(lambda _: running.pop(key, None))
        # Shielded: one caller's timeout does not cancel the others' computation.
        return await asyncio.shield(task)

    return shared


def panel_reply(panel: Panel, window: Window, table: Table) -> dict[str, Any]:
    """The reply but for the filters (added per request: the cache's key has only the filters
    the panel honours)."""
    return {
        "panel": panel.id,
        "visualisation": panel.visualisation.value,
        "unit": panel.unit,
        "from": window.start.isoformat(timespec="milliseconds"),
        "to": window.end.isoformat(timespec="milliseconds"),
        "tz": window.tz,
        "columns": table.columns,
        "rows": table.rows,
        "covers": table.covers,
        "parts": table.parts,
    }


@router.get(
    "/api/analytics/panels/{panel_id}",
    summary="One catalog panel's rows",
    responses={
        404: {"description": "No panel with this id"},
        503: {"description": "The store is not ready, or the panel took too long"},
    },
    description=(
        "The panel's table over [from, to) (ISO 8601 times, default the last 24 hours; at most "
        f"{MAX_RANGE_DAYS} days): `columns` and `rows` in the shape of its visualisation; stat "
        "panels one row `[value, previous]`, previous being the period of the same length "
        "before. `tz`: the viewer's IANA zone, for hour and day buckets and the heatmap. "
        "Filters (empty = all): environment, app_version, page_path, category, model; those the "
        "panel does not honour are listed in `filters_ignored`. `covers` says which period a "
        "report-backed panel covered when it is not the range (whole UTC days; the prompts "
        "report's window ending now). `format=csv` answers the table as CSV. Ranges over 7 days "
        "are cached like the reports (`X-Cache`). Errors: 404 unknown panel, 422 naming the "
        f"parameter, 503 when the store is not ready or the panel took over "
        f"{PANEL_TIMEOUT_SECONDS:.0f} s."
    ),
)
async def panel_endpoint(
    request: Request,
    response: Response,
    panel_id: str,
    start: FromTime = None,
    end: ToTime = None,
    tz: Zone = "UTC",
    environment: Value = "",
    app_version: Value = "",
    page_path: Value = "",
    category: Value = "",
    model: Value = "",
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Any:
    panel = PANELS_BY_ID.get(panel_id)
    if panel is None:
        raise HTTPException(status_code=404, detail=f"no panel {panel_id!r}")
    filters = {
        Filter.environment: environment,
        Filter.app_version: app_version,
        Filter.page_path: page_path,
        Filter.category: category,
        Filter.model: model,
    }
    window = await parse_window(request, start, end, tz, filters)
    share = sharer(request)

    async def answer() -> dict[str, Any]:
        return panel_reply(panel, window, await compute(request, panel, window, share))

    honoured = sorted((f.value, v) for f, v in window.filters.items() if f in panel.filters)
    key = f"panel:{panel.id}:{window.start.isoformat()}:{window.end.isoformat()}:{tz}:{honoured}"
    live = isinstance(panel.query, LiveQuery)
    is_long = not live and long_range(window.start.date(), window.end.date())
    try:
        reply: dict[str, Any] = await asyncio.wait_for(
            cached(request, response, key, is_long, answer), PANEL_TIMEOUT_SECONDS
        )
    except TimeoutError:
        message = (
            f"panel {panel.id} took longer than {PANEL_TIMEOUT_SECONDS:.0f} s; "
            "try a shorter range, or again in a moment"
        )
        body = orjson.dumps({"error": "PanelTimeout", "message": message})
        return Response(body, 503, {"retry-after": "5"}, media_type="application/json")
    reply = reply | {
        "filters_applied": [f.value for f in window.filters if f in panel.filters],
        "filters_ignored": [f.value for f in window.filters if f not in panel.filters],
    }
    headers = {k: v for k, v in response.headers.items() if k in ("cache-control", "x-cache")}
    if format == "csv":
        return csv_response(panel, window, reply, headers)
    return Response(orjson.dumps(reply), media_type="application/json", headers=headers)


def csv_cell(value: Any) -> Any:
    """A cell safe to open in a spreadsheet: text that a spreadsheet would run as a formula
    (prompt texts are people's words) is prefixed with an apostrophe (OWASP's advice)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def csv_response(
    panel: Panel, window: Window, reply: dict[str, Any], headers: dict[str, str]
) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(reply["columns"])
    writer.writerows([csv_cell(v) for v in row] for row in reply["rows"])
    stamp = f"{window.start:%Y%m%dT%H%M}-{window.end:%Y%m%dT%H%M}"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={
            **headers,
            "content-disposition": f'attachment; filename="{panel.id}_{stamp}.csv"',
        },
    )
