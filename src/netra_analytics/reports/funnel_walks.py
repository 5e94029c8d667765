"""Funnel walks computed ahead, so that a funnel report reads one row per user instead of
walking every event of its range (~300 ms for 30 days of the 10 M-event bench, most of the
journeys and ai-spend reports).

A build stores, for each start day of the last `days` (default 90, ANALYTICS_FUNNEL_WALK_DAYS)
up to a horizon (the last finished UTC day), every user's walk through every funnel over the
days from that start to the horizon (`funnel_walks`), and then, in `funnel_builds`, the
events and prompt rows per day it saw. A walk only moves forward in time, so:
- a range that ends by the horizon is the stored walk with the later times dropped;
- a range that ends after it goes on from the stored walk through the newer events.
Late events (or prompts) on a day of the range make the stored walk good only up to the day
before: the counts per day show which days are still as they were (events and prompt rows are
only ever added, so equal counts mean the same rows), and the walk goes on from the last of
them through the events after it. Walks are per person (person_links): a browser that signs in
after a build joins its person's walk, so the days it was active anonymously count as changed
(the third count per day: events stored under a linked anonymous id). A range starting
before the oldest stored start, or on a day that changed, is walked from the events, as
without a build. The answer is the same either way; tests check it against the walk from
the events.

The service builds once a day, after midnight UTC (`FunnelWalkBuilder`). A build goes on
from the previous night's walks where they hold, else walks the events: on the 10 M-event
bench, 90 start days took 44 s from the events and 31 s the next night (each start day one
query, so reports and inserts wait at most one of them in embedded mode), and ~330 MiB (about
35 bytes per user and start day). Several workers on one ClickHouse server each build (the
same walks; the newest build is read).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from netra_analytics import metrics
from netra_analytics.errors import StoreError
from netra_analytics.reports.common import sql, sql_template
from netra_analytics.reports.funnels import Funnels, StoredWalks, funnels_query, walk_query
from netra_analytics.store.base import Store

log = logging.getLogger(__name__)

NO_LIMIT = date(2149, 6, 6)  # ClickHouse's last Date
FRESH = timedelta(days=2)  # builds read; they expire after three days (migration 0012)
BUILT = (
    "SELECT count() AS n FROM analytics.funnel_builds "
    "WHERE config = {config:String} AND horizon = {horizon:Date}"
)


def config_key(funnels: Funnels) -> str:
    """Which funnel definitions a build walked: walks of other definitions are never read."""
    return hashlib.sha256(orjson.dumps(funnels, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


Counts = tuple[int, int, int]  # events, prompt rows, events under a linked anonymous id
NONE: Counts = (0, 0, 0)


def day_counts(store: Store, first: date, last: date) -> dict[date, Counts]:
    """Per UTC day: events, prompt rows, and events stored under an anonymous id that is
    linked to a person (days without any are absent)."""
    rows = store.query_rows(sql("funnel_day_counts"), {"first": first, "last": last})
    return {
        date.fromisoformat(row["day"]): (
            int(row["events"]),
            int(row["prompts"]),
            int(row["linked"]),
        )
        for row in rows
    }


@dataclass(frozen=True)
class Build:
    horizon: date
    generation: int
    starts: int  # start days with walks
    continued: int  # of which walked on from an earlier build's walks
    seconds: float


class Stopped(Exception):
    """The service is stopping: a build gives up between two start days, unfinished (its
    walks are never read without its funnel_builds row, and expire)."""


def build(
    store: Store,
    funnels: Funnels,
    horizon: date,
    days: int,
    stopping: threading.Event | None = None,
) -> Build:
    """Walk every funnel from each of the `days` start days up to `horizon` and store it: on
    from an earlier build's walks where they hold (the days after its horizon, or after a day
    that changed since), else from the events."""
    started = time.perf_counter()
    config, generation = config_key(funnels), time.time_ns() // 1000
    first = horizon - timedelta(days=days - 1)
    counts = day_counts(store, first, horizon)  # before any walk reads the events
    active = [day for day, (events, prompts, _) in counts.items() if events or prompts]
    starts = [day for day in _days(first, horizon) if active and day <= max(active)]
    continued = 0
    for start in starts:
        if stopping is not None and stopping.is_set():
            raise Stopped
        earlier = _newest_build(store, config, start, before=horizon)
        usable = _usable(earlier, config, funnels, start, horizon, counts) if earlier else None
        continued += usable is not None
        text, params = walk_query(
            funnels,
            rows_from=usable.until + timedelta(days=1) if usable else start,
            end=horizon,
            stored=usable,
            per_user=True,
        )
        store.execute(
            sql_template("funnel_walks_insert").replace("/*walks*/", text),
            params
            | {
                "build_config": config,
                "build_horizon": horizon,
                "build_generation": generation,
                "build_start": start,
            },
        )
    seconds = time.perf_counter() - started
    seen = [counts.get(day, NONE) for day in _days(first, horizon)]
    row = {
        "config": config,
        "horizon": horizon.isoformat(),
        "generation": generation,
        "first_start": first.isoformat(),
        "events": [events for events, _, _ in seen],
        "prompts": [prompts for _, prompts, _ in seen],
        "linked": [linked for _, _, linked in seen],
        "seconds": seconds,
    }
    store.insert_json_rows("funnel_builds", orjson.dumps(row))
    return Build(
        horizon=horizon,
        generation=generation,
        starts=len(starts),
        continued=continued,
        seconds=seconds,
    )


def funnel_totals(store: Store, funnels: Funnels, start: date, end: date) -> dict[str, Any]:
    """The funnels over the range, as `funnels_query` gives them: from the newest build where
    it still holds, else from the events."""
    walks = stored_walks(store, funnels, start, end)
    if walks is None:
        text, params = funnels_query(funnels, start, end)
    else:
        rows_from = walks.until + timedelta(days=1) if walks.until < end else None
        text, params = walk_query(
            funnels, rows_from=rows_from, end=end, stored=walks, per_user=False
        )
    [row] = store.query_rows(text, params)
    return row


def stored_walks(store: Store, funnels: Funnels, start: date, end: date) -> StoredWalks | None:
    """The newest build's walks from `start`, up to the last day of the range on which the
    data is as the build saw it (None: no build, or the first day changed)."""
    config = config_key(funnels)
    newest = _newest_build(store, config, start, before=NO_LIMIT)
    if newest is None:
        return None
    last = min(end, date.fromisoformat(newest["horizon"]))
    return _usable(newest, config, funnels, start, end, day_counts(store, start, last))


def _newest_build(store: Store, config: str, start: date, before: date) -> dict[str, Any] | None:
    """The newest build (row of funnel_builds) with walks from `start` and a horizon before
    `before`, if it ran within FRESH."""
    fresh_after = (time.time_ns() // 1000) - FRESH.days * 86_400_000_000
    found = store.query_rows(
        sql("funnel_build_newest"),
        {"config": config, "start": start, "before": before, "fresh_after": fresh_after},
    )
    return found[0] if found else None


def _usable(
    built: dict[str, Any],
    config: str,
    funnels: Funnels,
    start: date,
    end: date,
    now: dict[date, Counts],
) -> StoredWalks | None:
    """A build's walks from `start`, read up to the last day from `start` to `end` (and the
    build's horizon) on which the events, prompt rows and linked browsers' events are still
    those it saw (`now`: the counts per day today); None when the first day changed, or for a
    build from before the linked counts (migration 0015)."""
    horizon = date.fromisoformat(built["horizon"])
    first = date.fromisoformat(built["first_start"])
    if len(built["linked"]) != len(built["events"]):
        return None
    counted = zip(built["events"], built["prompts"], built["linked"], strict=True)
    seen = dict(zip(_days(first, horizon), counted, strict=True))
    with_prompts = any(
        "prompt_complexity_at_least" in step for steps in funnels.values() for step in steps
    )
    same_until = start - timedelta(days=1)
    for day in _days(start, min(end, horizon)):
        (events_then, prompts_then, linked_then) = seen[day]
        (events, prompts, linked) = now.get(day, NONE)
        if (
            events != events_then
            or linked != linked_then
            or (with_prompts and prompts != prompts_then)
        ):
            break
        same_until = day
    if same_until < start:
        return None
    return StoredWalks(
        config=config, generation=int(built["generation"]), start=start, until=same_until
    )


class FunnelWalkBuilder:
    """Builds the funnel walks up to the last finished UTC day, once a day (checked every
    minute), for the funnel definitions the reports use. A day is built from 00:10 UTC on: the
    prompts of its last minutes are analysed a moment after their events arrive."""

    CHECK_SECONDS = 60.0
    SETTLE = timedelta(minutes=10)

    def __init__(
        self, store: Store, funnels: Callable[[], Funnels], clock: Callable[[], float], days: int
    ) -> None:
        self._store, self._funnels, self._clock, self._days = store, funnels, clock, days
        self._stopping = threading.Event()
        self._building: asyncio.Future[Build | None] | None = None
        self.built_up_to: date | None = None  # the newest horizon found or built
        self.last: Build | None = None  # the last build this process made
        self.last_error: str | None = None

    def status(self) -> dict[str, Any]:
        """For /health/ready (informative: reports walk the events without walks)."""
        return {
            "built_up_to": self.built_up_to.isoformat() if self.built_up_to else None,
            "building": self._building is not None and not self._building.done(),
            "last_build_seconds": round(self.last.seconds, 1) if self.last else None,
            "last_error": self.last_error,
        }

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._building = asyncio.ensure_future(asyncio.to_thread(self.build_if_due))
            try:
                await self._building
                self.last_error = None
            except (StoreError, OSError, ValueError) as exc:  # the store, or a bad funnels file
                self.last_error = str(exc)
                log.warning("funnel walks not built; will retry", extra={"error": str(exc)})
            except Stopped:
                return
            await asyncio.sleep(self.CHECK_SECONDS)

    async def stop(self, task: asyncio.Task[None]) -> None:
        """Stop between two start days of a build (the store must outlive its last query)."""
        self._stopping.set()
        if self._building is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._building)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def build_if_due(self) -> Build | None:
        funnels = self._funnels()
        now = datetime.fromtimestamp(self._clock(), UTC)
        horizon = (now - self.SETTLE).date() - timedelta(days=1)
        done = self._store.query_rows(BUILT, {"config": config_key(funnels), "horizon": horizon})
        if int(done[0]["n"]):
            self.built_up_to = horizon
            return None
        built = build(self._store, funnels, horizon, self._days, self._stopping)
        self.built_up_to, self.last = horizon, built
        metrics.FUNNEL_WALK_BUILDS.inc()
        metrics.FUNNEL_WALK_BUILD_SECONDS.set(built.seconds)
        log.info(
            "funnel walks built",
            extra={"horizon": horizon.isoformat(), "starts": built.starts,
                   "continued": built.continued, "seconds": round(built.seconds, 1)},
        )  # fmt: skip
        return built
