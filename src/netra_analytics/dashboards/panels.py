"""Computing a catalog panel's table for a window: its SQL file, a part of a report, or the
live state.

Every panel answers `{"columns": [...], "rows": [[...], ...]}` in the shape its visualisation
draws (`catalog.SHAPES`). Stat panels answer one row, `[value, previous]`: the previous value is
the same query over the period of the same length just before the range (for live panels, the
five minutes before).

The System Health Score (panel `health_score`), 0-100, is the mean of five parts, each 0..1:

    store      1 while the store answers and the batch writer's last insert succeeded, else 0
    errors     1 - errors / events of the range (error_tracking events, failed performance
               metrics and feature uses: the live error rate's definition); 1 without events
    rejected   1 - rejected / (stored + rejected) events of the range (rejected_events)
    latency    p95 of the range's AI response times: 1 at 2 s or less, 0 at 10 s or more,
               linear between (1 without answers)
    freshness  age of the newest stored event: 1 at 5 minutes or less, 0 at an hour or more,
               linear between (0 with no event stored)

    score = 100 * (store + errors + rejected + latency + freshness) / 5

Equal weights: each part is a way the dashboards can mislead (data missing, late, refused, or
the product failing its users), and none is known to matter more; the parts are in the reply
(`parts`) so a low score says why.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request, Response

from netra_analytics.dashboards.catalog import (
    Filter,
    LiveQuery,
    Panel,
    ReportQuery,
    SqlQuery,
    Visualisation,
)
from netra_analytics.live.base import engagement
from netra_analytics.reports import activity, journeys, prompts, spend
from netra_analytics.reports.common import number, ready_store
from netra_analytics.service import Service

HOURLY_UP_TO = timedelta(days=3)  # longer ranges are drawn per day
LIVE_WINDOW_MS = 5 * 60 * 1000
PARAMETER = re.compile(r"\{(\w+):")
SHARED_PARTS = ("events_in_range", "period")  # sql/_<part>.sql, put in by panel_sql()


@dataclass(frozen=True)
class Window:
    """A panel's range and filters: `start` included, `end` excluded, both UTC-aware."""

    start: datetime
    end: datetime
    tz: str
    filters: dict[Filter, str]

    @property
    def hourly(self) -> bool:
        return self.end - self.start <= HOURLY_UP_TO

    def previous(self) -> Window:
        """The period of the same length just before."""
        span = self.end - self.start
        return replace(self, start=self.start - span, end=self.start)

    def utc_dates(self) -> tuple[date, date]:
        """The UTC days the range touches, first and last (for the reports by date)."""
        return self.start.date(), (self.end - timedelta(milliseconds=1)).date()


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[Any]]
    covers: str | None = None  # what was covered, when a report's periods differ from the range
    parts: dict[str, float] | None = None  # the health score's parts


def _sql_file(name: str) -> str:
    return (resources.files("netra_analytics.dashboards") / "sql" / f"{name}.sql").read_text()


@cache
def panel_sql(name: str) -> str:
    """The panel's SQL file with the parts several panels share put where it names them: the
    range and event filters (`/* events_in_range */`, `sql/_events_in_range.sql`) and the
    period label of a time series (`/* period */`, `sql/_period.sql`). The whole statement, as
    ClickHouse (and Grafana's provisioning) runs it."""
    text = _sql_file(name)
    for part in SHARED_PARTS:
        lines = _sql_file(f"_{part}").splitlines()
        kept = [line for line in lines if line.strip() and not line.startswith("--")]
        text = text.replace(f"/* {part} */", "\n  ".join(kept))
    return text


@cache
def stop_words() -> list[str]:
    text = (resources.files("netra_analytics.dashboards") / "data" / "stop_words.txt").read_text()
    lines = (line for line in text.splitlines() if not line.startswith("#"))
    return sorted({word for line in lines for word in line.split()})


def sql_parameters(name: str, window: Window) -> dict[str, Any]:
    """The parameters a panel's SQL file names, and only those (ClickHouse refuses none, but a
    file naming one we do not give would fail loudly in the catalog test)."""
    offered: dict[str, Any] = {
        "from": window.start,
        "to": window.end,
        "tz": window.tz,
        "hourly": window.hourly,
        "stop_words": stop_words(),
        **{str(f): window.filters.get(f, "") for f in Filter},
    }
    return {key: offered[key] for key in set(PARAMETER.findall(panel_sql(name)))}


async def run_sql(request: Request, name: str, window: Window) -> list[dict[str, Any]]:
    store = ready_store(request)
    return await asyncio.to_thread(store.query_rows, panel_sql(name), sql_parameters(name, window))


def period_labels(window: Window, zone: str, hourly: bool) -> list[str]:
    """Every period's label of the range, as the SQL files write them (hours `YYYY-MM-DD HH:00`
    or days `YYYY-MM-DD` in `zone`), so that periods without data are drawn as zeros."""
    where = ZoneInfo(zone)
    form = "%Y-%m-%d %H:00" if hourly else "%Y-%m-%d"
    moment = window.start.astimezone(where).replace(minute=0, second=0, microsecond=0)
    if not hourly:
        moment = moment.replace(hour=0)
    labels: list[str] = []
    while moment < window.end:
        label = moment.strftime(form)
        if not labels or labels[-1] != label:
            labels.append(label)
        if hourly:  # in UTC: a local hour may repeat or be skipped when clocks change
            moment = (moment.astimezone(UTC) + timedelta(hours=1)).astimezone(where)
        else:  # a local day is 23 to 25 hours: the next calendar day's midnight
            day = moment.date() + timedelta(days=1)
            moment = datetime(day.year, day.month, day.day, tzinfo=where)
    return labels


def fill_periods(rows: list[dict[str, Any]], labels: list[str]) -> list[dict[str, Any]]:
    """The rows of a time series with the missing periods as zeros, in order."""
    if not rows:
        return []
    found = {row["period"]: row for row in rows}
    zero = dict.fromkeys(rows[0], 0)
    known = set(labels)
    return [found.get(label, zero | {"period": label}) for label in labels] + [
        row for row in rows if row["period"] not in known
    ]


def as_table(rows: list[dict[str, Any]]) -> Table:
    if not rows:
        return Table([], [])
    columns = list(rows[0])
    return Table(columns, [[_plain(row[c]) for c in columns] for row in rows])


def _plain(value: Any) -> Any:
    """A value as JSON and CSV carry it: ClickHouse's nan (an average of nothing) as None."""
    if isinstance(value, float):
        return number(value)
    return value


def stat(value: Any, previous: Any) -> Table:
    return Table(["value", "previous"], [[_plain(value), _plain(previous)]])


# -- the health score ----------------------------------------------------------------------------


def ramp(value: float, good: float, bad: float) -> float:
    """1 at `good` or better, 0 at `bad` or worse, linear between (good < bad)."""
    return max(0.0, min(1.0, (bad - value) / (bad - good)))


def health_parts(signals: dict[str, Any], now: datetime, writer_ok: bool) -> dict[str, float]:
    """The score's five parts from health_signals.sql's row (module docstring)."""
    events, errors, rejected = (int(signals[k]) for k in ("events", "errors", "rejected"))
    p95 = number(signals["p95_response_ms"]) if events else None
    latest = signals["latest_event"]
    stored = latest is not None and not str(latest).startswith("1970-01-01")
    age = (now - datetime.fromisoformat(str(latest)).replace(tzinfo=UTC)).total_seconds()
    return {
        "store": 1.0 if writer_ok else 0.0,
        "errors": 1 - errors / events if events else 1.0,
        "rejected": 1 - rejected / (events + rejected) if events + rejected else 1.0,
        "latency": ramp(p95, 2000, 10000) if p95 is not None else 1.0,
        "freshness": ramp(age, 300, 3600) if stored else 0.0,
    }


def health_score(parts: dict[str, float]) -> float:
    return round(100 * sum(parts.values()) / len(parts), 1)


# -- reports --------------------------------------------------------------------------------------

Report = dict[str, Any]


async def report(request: Request, name: str, window: Window) -> tuple[Report, str | None]:
    """The report `name` over the window by its own function (and its cache), with what it
    covered when that is not the range: UTC days, or the prompts report's window ending now."""
    start, end = window.utc_dates()
    days = f"UTC days {start} to {end}"
    exact = window.start == datetime(start.year, start.month, start.day, tzinfo=UTC) and (
        window.end == datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    )
    covers = None if exact else days
    if name == "ai-spend":
        return await spend.ai_spend(request, Response(), start, end), covers
    if name == "feedback":
        feedback = await activity.feedback(request, Response(), start, end)
        return feedback.model_dump(mode="json"), covers
    if name == "journeys":
        return await journeys.journeys(request, Response(), start, end, None, 50), covers
    if name == "prompts":
        time_range = prompt_time_range(window, datetime.now(UTC))
        category = window.filters.get(Filter.category) or None
        found = await prompts.prompt_report(request, category, 2, time_range)
        return found, f"the last {time_range.value}, since {found['since']} UTC"
    raise KeyError(name)


def prompt_time_range(window: Window, now: datetime) -> prompts.TimeRange:
    """The prompts report's shortest window (ending now) that covers the range's start."""
    for time_range in prompts.TimeRange:
        if now - prompts.SPANS[time_range.value] <= window.start:
            return time_range
    return prompts.TimeRange.month


def report_table(panel: Panel, field: str, found: Report) -> Table:
    """The panel's part of a report as its table (catalog.SHAPES)."""
    value: Any = found.get(field)
    if field == "by_model":
        return Table(["model", "spend_cents"], [[m["model"], m["spend_cents"]] for m in value])
    if field == "daily":  # the range's days, then the 30 days of the report's projection
        start, end = date.fromisoformat(found["start_date"]), date.fromisoformat(found["end_date"])
        series = [(date.fromisoformat(d["day"]), d["spend_cents"]) for d in value]
        measured = [[d["day"], d["spend_cents"], None] for d in value]
        ahead = [
            [(end + timedelta(days=k + 1)).isoformat(), None, cents]
            for k, cents in enumerate(spend.projected_days(series, start, end))
        ]
        return Table(
            ["period", "spend_cents", "projected_cents"], measured + ahead if value else []
        )
    if field == "survey_reported":
        measured = found["total_spend_cents"] / 100
        rows = [["measured in the range (USD)", measured]] + [
            [label, value[key]]
            for label, key in (
                ("survey: last month (mean)", "ai_spend_last_month_mean"),
                ("survey: next quarter (mean)", "ai_spend_next_quarter_mean"),
            )
            if value[key] is not None
        ]
        return Table(
            ["measure", "value"], rows if found["total_spend_cents"] or len(rows) > 1 else []
        )
    if field == "surveys":
        kinds = [s["question_type"] for s in value]
        rows = [
            [point, *(s["scale_distribution"][point] for s in value)]
            for point in (str(p) for p in range(1, 11))
        ]
        return Table(["scale", *kinds], rows if kinds else [])
    if field == "paths":
        return Table(["source", "target", "value"], acyclic_moves(value))
    if field == "cohorts":
        return Table(
            ["cohort", "users", "week", "retention"],
            [
                [c["cohort"], c["users"], week, share]
                for c in value
                for week, share in enumerate(c["retention"])
            ],
        )
    if field in ("onboarding", "value_realisation"):
        steps = found["funnels"].get(field, [])
        rows = [[s["step"], s["users"], s["conversion_from_start"]] for s in steps]
        return Table(
            ["step", "users", "conversion_from_start"], rows if rows and rows[0][1] else []
        )
    if field == "category_distribution":
        ranked = sorted(value.items(), key=lambda item: (-item[1], item[0]))
        return Table(["category", "prompts"], [[k, n] for k, n in ranked])
    if field == "complexity_trend":
        # The report's buckets are UTC hours or days ("YYYY-MM-DD HH:MM:SS").
        hourly = found["time_range"] in ("1h", "24h")
        return Table(
            ["period", "complexity"],
            [[t["bucket"][:13] + ":00" if hourly else t["bucket"][:10], t["complexity"]]
             for t in value],
        )  # fmt: skip
    if field == "most_frequent":
        return Table(
            ["question", "times_asked", "people", "category"],
            [[q["example"], q["count"], q["users"], q["category"]] for q in value],
        )
    if field == "unanswered":
        return Table(
            ["timestamp", "question", "category", "no_response", "errors_after"],
            [[u["timestamp"], u["text"], u["category"], u["no_response"], u["errors_after"]]
             for u in value],
        )  # fmt: skip
    raise KeyError(f"panel {panel.id}: no table for the report field {field!r}")


def acyclic_moves(moves: list[dict[str, Any]]) -> list[list[Any]]:
    """Page moves as Sankey links: a Sankey diagram cannot draw a cycle (/chat -> /settings ->
    /chat), so links are taken from the most common down, and one that would close a cycle
    with those already taken is left out (its pages stay, by their other links)."""
    successors: dict[str, set[str]] = {}

    def reaches(source: str, target: str) -> bool:
        seen, todo = set(), [source]
        while todo:
            page = todo.pop()
            if page == target:
                return True
            if page not in seen:
                seen.add(page)
                todo.extend(successors.get(page, ()))
        return False

    links = []
    for move in sorted(moves, key=lambda m: -int(m["moves"])):
        source, target = move["from"], move["to"]
        if source == target or reaches(target, source):
            continue
        successors.setdefault(source, set()).add(target)
        links.append([source, target, int(move["moves"])])
    return links


# -- one panel ------------------------------------------------------------------------------------


async def compute(
    request: Request,
    panel: Panel,
    window: Window,
    shared: Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]],
) -> Table:
    """The panel's table over the window. `shared(key, make)` runs `make()` once for callers
    that ask for the same key at the same time (the panels of one report, loaded together)."""
    query = panel.query
    if isinstance(query, LiveQuery):
        return await live_stat(request, query.field)
    if isinstance(query, ReportQuery):
        return await report_panel(request, panel, query, window, shared)
    return await sql_panel(request, panel, query, window)


async def live_stat(request: Request, field: str) -> Table:
    service: Service = request.app.state.service
    now_ms = int(service.clock() * 1000)
    then_ms = now_ms - LIVE_WINDOW_MS
    now = engagement((await service.live.totals(now_ms))[0], now_ms)
    before = engagement((await service.live.totals(then_ms))[0], then_ms)
    names = {"avg_ai_response_time_ms": "avg_ai_response_ms"}  # the report's name for it
    name = names.get(field, field)
    return stat(getattr(now, name), getattr(before, name))


async def report_panel(
    request: Request,
    panel: Panel,
    query: ReportQuery,
    window: Window,
    shared: Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]],
) -> Table:
    def load(w: Window) -> Awaitable[tuple[Report, str | None]]:
        key = (
            f"{query.report}:{w.start.isoformat()}:{w.end.isoformat()}:{sorted(w.filters.items())}"
        )
        return shared(key, lambda: report(request, query.report, w))

    found, covers = await load(window)
    if panel.visualisation is Visualisation.stat:
        before, _ = await load(window.previous())
        return replace(stat(found[query.field], before[query.field]), covers=covers)
    return replace(report_table(panel, query.field, found), covers=covers)


async def sql_panel(request: Request, panel: Panel, query: SqlQuery, window: Window) -> Table:
    if query.shape == "health_score":
        service: Service = request.app.state.service
        writer_ok = service.writer is None or service.writer.state.consecutive_failures == 0
        now = datetime.fromtimestamp(service.clock(), UTC)
        [signals] = await run_sql(request, query.file, window)
        [earlier] = await run_sql(request, query.file, window.previous())
        parts = health_parts(signals, now, writer_ok)
        previous = health_score(health_parts(earlier, now, writer_ok))
        return replace(stat(health_score(parts), previous), parts=parts)
    if panel.visualisation is Visualisation.stat:
        [row] = await run_sql(request, query.file, window)
        [before] = await run_sql(request, query.file, window.previous())
        return stat(row["value"], before["value"])
    rows = await run_sql(request, query.file, window)
    if panel.visualisation is Visualisation.timeseries:
        params = sql_parameters(query.file, window)
        zone = window.tz if "tz" in params else "UTC"
        rows = fill_periods(rows, period_labels(window, zone, "hourly" in params and window.hourly))
    return as_table(rows)
