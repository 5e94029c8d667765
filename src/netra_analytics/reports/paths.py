"""Session paths for the journeys report: the most common moves between pages.

A move is two consecutive events of one session on different, non-empty pages, on the same
or consecutive UTC days; it belongs to the day of its second event. Finding each event's
previous page means grouping every event of a range by session, which costs ~400 ms for 30 days
of the 10 M-event bench, so the moves of a day are stored in `path_moves` once computed and
read back while the day is unchanged: while activity_rollup still counts the same events on it
and on the day before (events are only ever added, so equal counts mean the same events). A
day that changed, or was never computed, is computed again (and kept again); today (UTC) is
computed every time and never kept, as it changes with every event.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from netra_analytics.errors import StoreError
from netra_analytics.reports.common import events_table, sql
from netra_analytics.store.base import Store

log = logging.getLogger(__name__)


def page_moves(store: Store, start: date, end: date, limit: int) -> list[dict[str, Any]]:
    """The `limit` most common moves with the days from `start` to `end` (inclusive)."""
    days = store.query_rows(sql("path_days"), {"start": start, "end": end})
    today = datetime.now(UTC).date()
    stored: list[dict[str, Any]] = []
    to_compute: list[dict[str, Any]] = []
    for day in days:
        if int(day["events"]) == 0:
            continue  # no move can end on a day without events
        kept = (day["stored_events_before"], day["stored_events"])
        unchanged = int(day["generation"]) > 0 and kept == (day["events_before"], day["events"])
        (stored if unchanged else to_compute).append(day)
    moves: Counter[tuple[str, str]] = Counter()
    if stored:
        params = {
            "days": [date.fromisoformat(d["date"]) for d in stored],
            "generations": [int(d["generation"]) for d in stored],
        }
        for row in store.query_rows(sql("path_moves_stored"), params):
            moves[(row["from_page"], row["to_page"])] += int(row["total"])
    computed = [
        row
        for first, last in _runs([date.fromisoformat(d["date"]) for d in to_compute])
        for row in store.query_rows(
            sql("path_moves_by_day"),
            {"first": first, "last": last, "events": events_table(first - timedelta(days=1))},
        )
    ]
    for row in computed:
        moves[(row["from_page"], row["to_page"])] += int(row["moves"])
    settled = [d for d in to_compute if date.fromisoformat(d["date"]) < today]
    if settled:
        try:
            _store_days(store, settled, computed)
        except StoreError as exc:  # the answer stands; the next report computes them again
            log.warning("could not keep the page moves of %d days: %s", len(settled), exc)
    ranked = sorted(moves.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [{"from": a, "to": b, "moves": n} for (a, b), n in ranked]


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days, first and last of each: a run is one read of the
    events (reading by date costs whole monthly partitions, not the days asked for)."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] == day - timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _store_days(store: Store, days: list[dict[str, Any]], computed: list[dict[str, Any]]) -> None:
    """Write the moves of settled days, one marker row per day (so that days without moves are
    known), with the counts they were computed from; the generation orders computations."""
    generation = time.time_ns() // 1000  # microseconds: newer computations read first
    by_day = {d["date"]: d for d in days}
    rows = [{"date": d["date"], "from_page": "", "to_page": "", "moves": 0} for d in days] + [
        row for row in computed if row["date"] in by_day
    ]
    lines = [
        orjson.dumps(
            row
            | {
                "generation": generation,
                "events_before": int(by_day[row["date"]]["events_before"]),
                "events": int(by_day[row["date"]]["events"]),
            }
        )
        for row in rows
    ]
    store.insert_json_rows("path_moves", b"\n".join(lines))
