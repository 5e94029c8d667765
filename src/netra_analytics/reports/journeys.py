"""`journeys`: the two funnels of the spec, weekly cohort retention, and session paths.

Funnel steps come from a JSON file (`reports/data/funnels.json`, or `ANALYTICS_FUNNELS`). A
user reaches a step at the first time it happens at or after the previous step; conversion
and the median time between steps are computed from those times. ClickHouse returns, per
step, each user's times (`journey_step_*.sql`); the ordering walk is done here, where it is
easy to read and test.
"""

from __future__ import annotations

import bisect
import json
import statistics
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from netra_analytics.reports.common import LONG_RANGE_DAYS, cached, check_range, invalid, query
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


async def step_times(
    request: Request, step: dict[str, Any], start: date, end: date
) -> dict[str, list[int]]:
    params: dict[str, Any] = {"start": start, "end": end}
    if "match" in step:
        params |= {field: str(step["match"].get(field, "")) for field in MATCH_FIELDS}
        rows = await query(request, "journey_step_events", params)
    elif "active_days" in step:
        rows = await query(
            request, "journey_step_active_days", params | {"days": int(step["active_days"])}
        )
    else:
        params["min_complexity"] = float(step["prompt_complexity_at_least"])
        rows = await query(request, "journey_step_complexity", params)
    return {row["user_id"]: row["times"] for row in rows}


def walk(names: list[str], times: list[dict[str, list[int]]]) -> list[dict[str, Any]]:
    """Conversion through ordered steps: each reached at its first time after the previous."""
    reached: list[int] = [0] * len(names)
    waits: list[list[float]] = [[] for _ in names]
    for user, first_times in times[0].items():
        moment = first_times[0]
        reached[0] += 1
        for k in range(1, len(names)):
            candidates = times[k].get(user, [])
            at = bisect.bisect_left(candidates, moment)
            if at == len(candidates):
                break
            waits[k].append((candidates[at] - moment) / 1000)
            moment = candidates[at]
            reached[k] += 1
    out = []
    for k, name in enumerate(names):
        out.append(
            {
                "step": name,
                "users": reached[k],
                "conversion_from_previous": reached[k] / reached[k - 1]
                if k and reached[k - 1]
                else None,
                "conversion_from_start": reached[k] / reached[0] if reached[0] else None,
                "median_seconds_from_previous": statistics.median(waits[k]) if waits[k] else None,
            }
        )
    return out


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
        "Paths: the most common page-to-page moves within sessions."
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
            "funnels": {},
        }
        for name, steps in chosen.items():
            times = [await step_times(request, step, start_date, end_date) for step in steps]
            result["funnels"][name] = walk([step["name"] for step in steps], times)
        params = {"start": start_date, "end": end_date}
        result["cohorts"] = retention(await query(request, "journey_cohorts", params))
        moves = await query(request, "journey_paths", params | {"limit": paths})
        result["paths"] = [
            {"from": m["from_page"], "to": m["to_page"], "moves": int(m["moves"])} for m in moves
        ]
        return result

    key = f"journeys:{start_date}:{end_date}:{funnel}:{paths}"
    long_range = (end_date - start_date).days + 1 > LONG_RANGE_DAYS
    answer: dict[str, Any] = await cached(request, response, key, long_range, compute)
    return answer
