"""What every report shares: its SQL (named `.sql` files), parameter checks that answer 422
naming the parameter, running on the store off the event loop, and a short cache.

Parameters are checked before any SQL runs, against what the store can hold: dates within
FIRST_DATE..LAST_DATE, time zones that both Python and the store's ClickHouse know. A value
outside is a 422 naming the parameter, never a ClickHouse error or an overflow in Python.

Distinct users are counted exactly, as `uniqExact(cityHash64(user_id))`: a set of 64-bit
hashes is about twice as fast as a set of strings, and two users collide with odds near
10^-10 at 100,000 users (measured: 124 → 68 ms for a 30-day user-activity on 3 M events).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, TypeVar
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import orjson
from fastapi import HTTPException, Request, Response

from netra_analytics.service import Service
from netra_analytics.store.base import Store
from netra_analytics.store.bounded import ReportRunner

T = TypeVar("T")

LONG_RANGE_DAYS = 7  # longer reports are cached (ANALYTICS_REPORT_CACHE_SECONDS, default 60)

# The dates a report may ask for. ClickHouse's DateTime (activity_rollup's buckets, and what
# toStartOfHour and its kin return) holds 1970-01-01 00:00:00 to 2106-02-07 06:28:15 UTC, its
# Date 1970-01-01 to 2149-06-06; a month's margin at either end leaves room for a period rounded
# down to its Monday or the first of its month, and for a zone's offset (at most 14 hours).
FIRST_DATE = date(1970, 2, 1)
LAST_DATE = date(2105, 12, 31)
DATES_NOTE = f"Dates from {FIRST_DATE} to {LAST_DATE}; else 422 naming the parameter."


@cache
def sql(name: str) -> str:
    return (resources.files("netra_analytics.reports") / "sql" / f"{name}.sql").read_text()


def sql_template(name: str) -> str:
    """A named SQL file without its comment lines: for files whose /*...*/ parts code fills
    in (their comments may name those parts too)."""
    return "\n".join(line for line in sql(name).splitlines() if not line.startswith("--"))


def invalid(parameter: str, message: str) -> HTTPException:
    return HTTPException(
        status_code=422,
        detail=[{"loc": ["query", parameter], "msg": message, "type": "value_error"}],
    )


def check_range(start: date, end: date, max_days: int, per: str = "") -> None:
    """Check a report's inclusive `start_date`..`end_date`: both within FIRST_DATE..LAST_DATE,
    in order, at most `max_days` days long (`per`: what that limit depends on, for the
    message). Raises the 422 naming the parameter at fault."""
    for name, day in (("start_date", start), ("end_date", end)):
        if not FIRST_DATE <= day <= LAST_DATE:
            raise invalid(
                name,
                f"{name} {day} is outside the dates reports cover, {FIRST_DATE} to {LAST_DATE}",
            )
    if end < start:
        raise invalid("end_date", f"end_date {end} is before start_date {start}")
    if (end - start).days + 1 > max_days:
        raise invalid("end_date", f"the range may span at most {max_days} days{per}")


@cache
def python_zones() -> frozenset[str]:
    """The IANA zone names zoneinfo lists (the system's tz database, or tzdata's), read once."""
    return frozenset(available_timezones())


# Per store: the zones both it and Python know (read once; a failed read is tried again).
_STORE_ZONES: WeakKeyDictionary[Store, frozenset[str]] = WeakKeyDictionary()


async def known_zones(request: Request) -> frozenset[str]:
    """The time zones a report accepts: those Python's zoneinfo lists and the store's ClickHouse
    knows too (`system.time_zones`; a ClickHouse server may know others than embedded chDB).
    Each list alone has names the other refuses (`right/UTC`, `localtime`). Raises the store's
    errors (503 when it does not answer) and 503 before the schema is ready."""
    store = ready_store(request)
    zones = _STORE_ZONES.get(store)
    if zones is None:
        rows = await run_report(request, store.query_rows, sql("time_zones"))
        zones = python_zones() & {str(row["name"]) for row in rows}
        _STORE_ZONES[store] = zones
    return zones


async def zone(request: Request, tz: str) -> ZoneInfo:
    """The zone named `tz`, if both Python and the store know it; else the 422 naming `tz`."""
    if tz in await known_zones(request):
        try:
            return ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise invalid("tz", f"unknown time zone {tz!r}; an IANA name such as UTC or Europe/Paris")


# Per service: the runner of its report queries (time and memory bounds, own threads).
_RUNNERS: WeakKeyDictionary[Service, ReportRunner] = WeakKeyDictionary()


def report_runner(request: Request) -> ReportRunner:
    """The service's ReportRunner (`store.bounded`); 503 before the schema is ready."""
    service: Service = request.app.state.service
    if service.store is None or not service.schema_ready.is_set():
        raise HTTPException(status_code=503, detail="the store is not ready yet")
    runner = _RUNNERS.get(service)
    if runner is None:
        settings = service.settings
        runner = ReportRunner(
            service.store,
            seconds=settings.report_timeout_seconds,
            memory_bytes=settings.report_max_memory_bytes,
            concurrency=settings.report_concurrency,
        )
        _RUNNERS[service] = runner
        weakref.finalize(service, runner.close)
    return runner


def ready_store(request: Request) -> Store:
    """The store as reports use it: every SELECT within the report bounds."""
    return report_runner(request).store


async def run_report(request: Request, work: Callable[..., T], *args: Any) -> T:
    """`work(*args)` (which queries `ready_store`) on the report threads, not the loop's."""
    return await report_runner(request).run(work, *args)


async def query(request: Request, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return await run_report(request, ready_store(request).query_rows, sql(name), params)


def events_table(first_day: date) -> str:
    """The table to read events from `first_day` on: recent_events (one partition per day, the
    last three days) when that is today or yesterday (UTC), else frontend_events (sorted by
    user, so any day costs a read of its month). For `analytics.{events:Identifier}`."""
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    return "recent_events" if first_day >= yesterday else "frontend_events"


def long_range(start: date, end: date) -> bool:
    """Whether a report over these dates (inclusive) is long enough to be cached."""
    return (end - start).days + 1 > LONG_RANGE_DAYS


async def cached(
    request: Request,
    response: Response,
    key: str,
    long_range: bool,
    compute: Any,
) -> Any:
    """Serve a long-range report from the live state's cache for a short time; say so."""
    service: Service = request.app.state.service
    seconds = service.settings.report_cache_seconds
    if not long_range or seconds == 0:
        response.headers["cache-control"] = "no-store"
        return await compute()
    response.headers["cache-control"] = f"private, max-age={seconds}"
    hit = await service.live.cache_get(key)
    if hit is not None:
        response.headers["x-cache"] = "hit"
        return orjson.loads(hit)
    result = await compute()
    await service.live.cache_put(key, orjson.dumps(result), seconds)
    response.headers["x-cache"] = "miss"
    return result


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def day_after(day: date) -> date:
    return day + timedelta(days=1)


def number(value: Any) -> float | None:
    """A ClickHouse average as a float, or None where it averaged nothing (nan or NULL)."""
    if value is None:
        return None
    result = float(value)
    return None if result != result else result
