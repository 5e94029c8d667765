"""`journeys`: the two funnels of the spec, weekly cohort retention, and session paths.

Funnel steps come from a JSON file (`reports/data/funnels.json`, or `ANALYTICS_FUNNELS`). A
user reaches a step at the first time it happens at or after the previous step; conversion
and the median time between steps are computed from those times. `funnels_query` builds one
query for all funnels: a single pass over the range's events gives each user's times for every
event and active-days step (`journey_funnel_events.sql`), complexity steps join
prompt_analytics, and the steps are walked in ClickHouse (`arrayFirst` of the times at or after
the previous step), so only counts and median waits come back. A user enters a funnel through an
event in the range.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from netra_analytics.reports.common import (
    cached,
    check_range,
    invalid,
    long_range,
    number,
    query,
    ready_store,
    sql,
)
from netra_analytics.reports.paths import page_moves
from netra_analytics.service import Service

router = APIRouter(prefix="/api/analytics/reports", tags=["reports"])

MATCH_FIELDS = ("event_type", "event_category", "event_action", "event_label", "page_path")


def load_funnels(path: Path | None) -> dict[str, list[dict[str, Any]]]:
    if path is None:
        text = (resources.files("netra_analytics.reports") / "data" / "funnels.json").read_text()
    else:
        text = path.read_text()
    funnels: dict[str, list[dict[str, Any]]] = json.loads(text)["funnels"]
    for name, steps in funnels.items():
        for step in steps:
            kinds = {"match", "active_days", "prompt_complexity_at_least"} & set(step)
            if len(kinds) != 1 or not set(step.get("match", {})) <= set(MATCH_FIELDS):
                raise ValueError(f"funnel {name!r}: step {step!r} is not one of the known kinds")
    return funnels


# Times kept per user and step: a step reached only after the user's 1,000th matching event in
# the range is not seen (bounds the memory of a user with a flood of events).
FIRST_TIMES = 1000


def _sql_text(name: str) -> str:
    return "\n".join(line for line in sql(name).splitlines() if not line.startswith("--"))


def funnels_query(
    funnels: dict[str, list[dict[str, Any]]], start: date, end: date
) -> tuple[str, dict[str, Any]]:
    """One query that walks every funnel in ClickHouse: per user, step 0's first time, then each
    step's first time at or after the previous one (0 when never); then per funnel the counts
    and the median waits between steps (`f{i}_reached_{k}`, `f{i}_median_wait_{k}`). Match and
    active-days steps of all funnels share one pass over the events
    (`journey_funnel_events.sql`); complexity steps are joined subqueries on prompt_analytics
    (`journey_step_complexity.sql`). The structure comes only from the step kinds and an
    allow-list of fields; values are parameters."""
    params: dict[str, Any] = {"start": start, "end": end, "range_days": (end - start).days + 1}
    aggregates: list[str] = []
    joins: list[str] = []
    reached: list[str] = []
    outputs: list[str] = []
    for i, steps in enumerate(funnels.values()):
        times: list[str] = []
        for k, step in enumerate(steps):
            key = f"f{i}s{k}"
            if "match" in step:
                fields = sorted(step["match"])
                if not set(fields) <= set(MATCH_FIELDS):
                    raise ValueError(f"step {k} matches fields outside {MATCH_FIELDS}")
                predicate = " AND ".join(f"{f} = {{{key}_{f}:String}}" for f in fields) or "1"
                params |= {f"{key}_{f}": str(step["match"][f]) for f in fields}
                if k == 0:  # only its first time matters (0 when none)
                    aggregates.append(f"[minIf(t, {predicate})] AS {key}")
                else:
                    aggregates.append(f"groupArraySortedIf({FIRST_TIMES})(t, {predicate}) AS {key}")
                times.append(f"ev.{key}")
            elif "active_days" in step:
                params[f"{key}_days"] = int(step["active_days"])
                aggregates.append(
                    f"[arrayFilter(x -> x > 0, minResample(0, {{range_days:UInt32}}, 1)(t, day))"
                    f"[{{{key}_days:UInt32}}]] AS {key}"
                )
                times.append(f"ev.{key}")
            else:
                params[f"{key}_min_complexity"] = float(step["prompt_complexity_at_least"])
                text = _sql_text("journey_step_complexity").replace(
                    "{min_complexity:", f"{{{key}_min_complexity:"
                )
                joins.append(f"LEFT JOIN ({text}) AS p{key} ON ev.user_id = p{key}.user_id")
                times.append(f"p{key}.times")
        reached.append(f"arrayMin({times[0]}) AS f{i}t0")
        for k in range(1, len(steps)):
            before = f"f{i}t{k - 1}"
            reached.append(
                f"if({before} = 0, 0, arrayFirst(x -> x >= {before}, {times[k]})) AS f{i}t{k}"
            )
        outputs += [f"countIf(f{i}t{k} > 0) AS f{i}_reached_{k}" for k in range(len(steps))]
        # The median wait, as statistics.median takes it (the mean of the middle two of an
        # even count): shipping every user's wait to Python cost ~100 ms at 100,000 users.
        outputs += [
            f"quantileExactInclusiveIf(0.5)(f{i}t{k} - f{i}t{k - 1}, f{i}t{k} > 0) "
            f"AS f{i}_median_wait_{k}"
            for k in range(1, len(steps))
        ]
    events = _sql_text("journey_funnel_events").replace(
        "/*aggregates*/", "".join(f",\n  {a}" for a in aggregates)
    )
    text = (
        f"SELECT {', '.join(outputs)}\n"
        f"FROM (SELECT {', '.join(reached)}\nFROM ({events}) AS ev\n" + "\n".join(joins) + ")"
    )
    return text, params


def funnel_steps(names: list[str], row: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    reached = [int(row[f"{prefix}_reached_{k}"]) for k in range(len(names))]
    out = []
    for k, name in enumerate(names):
        median_wait = number(row.get(f"{prefix}_median_wait_{k}")) if reached[k] else None
        out.append(
            {
                "step": name,
                "users": reached[k],
                "conversion_from_previous": reached[k] / reached[k - 1]
                if k and reached[k - 1]
                else None,
                "conversion_from_start": reached[k] / reached[0] if reached[0] else None,
                "median_seconds_from_previous": median_wait / 1000
                if median_wait is not None
                else None,
            }
        )
    return out


async def walk_funnels(
    request: Request, funnels: dict[str, list[dict[str, Any]]], start: date, end: date
) -> dict[str, list[dict[str, Any]]]:
    """Every funnel's steps: users reached, conversions and median waits, from one query."""
    text, params = funnels_query(funnels, start, end)
    [row] = await asyncio.to_thread(ready_store(request).query_rows, text, params)
    return {
        name: funnel_steps([step["name"] for step in steps], row, f"f{i}")
        for i, (name, steps) in enumerate(funnels.items())
    }


def retention(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_cohort: dict[str, dict[int, int]] = {}
    for row in rows:
        cohort, week = date.fromisoformat(row["cohort"]), date.fromisoformat(row["week"])
        by_cohort.setdefault(cohort.isoformat(), {})[(week - cohort).days // 7] = int(row["users"])
    matrix = []
    for cohort_start, weeks in sorted(by_cohort.items()):
        size = weeks.get(0, 0)
        last = max(weeks)
        matrix.append(
            {
                "cohort": cohort_start,
                "users": size,
                "retention": [weeks.get(k, 0) / size if size else None for k in range(last + 1)],
            }
        )
    return matrix


@router.get(
    "/journeys",
    summary="Funnels, weekly cohort retention and session paths",
    description=(
        "Onboarding (first event → first chat → feature discovery → active on 3 days) and value "
        "realisation (first interaction → complex query → cost savings identified) by default, "
        "each step configurable; conversion and median time per step. Retention: cohort = week "
        "(Monday, UTC) of a user's first event; cell k = share of the cohort active in week k. "
        "Paths: the most common page-to-page moves within sessions (two consecutive events of a "
        "session on the same or the next UTC day), each counted on the day of its second event "
        "(days that can no longer change are computed once and kept)."
    ),
)
async def journeys(
    request: Request,
    response: Response,
    start_date: date,
    end_date: date,
    funnel: Annotated[str | None, Query(max_length=64)] = None,
    paths: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    check_range(start_date, end_date, 366)
    service: Service = request.app.state.service
    funnels = load_funnels(service.settings.funnels_file)
    if funnel is not None and funnel not in funnels:
        raise invalid("funnel", f"unknown funnel {funnel!r}; one of {', '.join(funnels)}")
    chosen = {funnel: funnels[funnel]} if funnel else funnels

    async def compute() -> dict[str, Any]:
        result: dict[str, Any] = {
            "start_date": start_date.isoformat(),
            "end_date": end_date.isoformat(),
        }
        result["funnels"] = await walk_funnels(request, chosen, start_date, end_date)
        params = {"start": start_date, "end": end_date}
        result["cohorts"] = retention(await query(request, "journey_cohorts", params))
        result["paths"] = await asyncio.to_thread(
            page_moves, ready_store(request), start_date, end_date, paths
        )
        return result

    key = f"journeys:{start_date}:{end_date}:{funnel}:{paths}"
    answer: dict[str, Any] = await cached(
        request, response, key, long_range(start_date, end_date), compute
    )
    return answer
