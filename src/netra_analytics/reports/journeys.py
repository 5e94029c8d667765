"""`journeys`: the two funnels of the spec, weekly cohort retention, and session paths.

Funnel steps come from a JSON file (`reports/data/funnels.json`, or `ANALYTICS_FUNNELS`). A
user reaches a step at the first time it happens at or after the previous step; conversion
and the median time between steps are computed from those times. ClickHouse returns, per
step, each user's times (`journey_step_*.sql`); `funnel_query` joins them into one query that
walks the steps in ClickHouse (`arrayFirst` of the times at or after the previous step), so
only counts and waits come back.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from netra_analytics.reports.common import LONG_RANGE_DAYS, cached, check_range, invalid, query, sql
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


_STEP_SQL = {"match": "journey_step_events", "active_days": "journey_step_active_days",
             "prompt_complexity_at_least": "journey_step_complexity"}  # fmt: skip
_PARAMETER = re.compile(r"\{(\w+):")


def _step(step: dict[str, Any], k: int, start: date, end: date) -> tuple[str, dict[str, Any]]:
    """Step k's per-user times as a subquery, its parameters renamed `s{k}_...` so that the
    steps can share one query."""
    kind = next(kind for kind in _STEP_SQL if kind in step)
    params: dict[str, Any] = {"start": start, "end": end}
    if kind == "match":
        params |= {field: str(step["match"].get(field, "")) for field in MATCH_FIELDS}
    elif kind == "active_days":
        params["days"] = int(step["active_days"])
    else:
        params["min_complexity"] = float(step["prompt_complexity_at_least"])
    text = "\n".join(
        line for line in sql(_STEP_SQL[kind]).splitlines() if not line.startswith("--")
    )
    return _PARAMETER.sub(rf"{{s{k}_\1:", text), {f"s{k}_{name}": v for name, v in params.items()}


def funnel_query(steps: list[dict[str, Any]], start: date, end: date) -> tuple[str, dict[str, Any]]:
    """One query that walks a funnel in ClickHouse: per user, step 0's first time, then each
    step's first time at or after the previous one (0 when never); then the counts and the
    waits between steps. The structure comes only from the step kinds (an allow-list)."""
    subqueries: list[str] = []
    params: dict[str, Any] = {}
    for k, step in enumerate(steps):
        text, step_params = _step(step, k, start, end)
        subqueries.append(text)
        params |= step_params
    joins = "\n".join(
        f"LEFT JOIN ({subqueries[k]}) AS s{k} ON s0.user_id = s{k}.user_id"
        for k in range(1, len(steps))
    )
    reached = ["arrayMin(s0.times) AS t0"]
    for k in range(1, len(steps)):
        reached.append(f"if(t{k - 1} = 0, 0, arrayFirst(x -> x >= t{k - 1}, s{k}.times)) AS t{k}")
    counts = ", ".join(f"countIf(t{k} > 0) AS reached_{k}" for k in range(len(steps)))
    waits = ", ".join(
        f"groupArrayIf(t{k} - t{k - 1}, t{k} > 0) AS waits_{k}" for k in range(1, len(steps))
    )
    text = (
        f"SELECT {counts}{', ' + waits if waits else ''}\n"
        f"FROM (SELECT {', '.join(reached)}\nFROM ({subqueries[0]}) AS s0\n{joins})"
    )
    return text, params


def funnel_steps(names: list[str], row: dict[str, Any]) -> list[dict[str, Any]]:
    reached = [int(row[f"reached_{k}"]) for k in range(len(names))]
    out = []
    for k, name in enumerate(names):
        waits = row.get(f"waits_{k}") or []
        out.append(
            {
                "step": name,
                "users": reached[k],
                "conversion_from_previous": reached[k] / reached[k - 1]
                if k and reached[k - 1]
                else None,
                "conversion_from_start": reached[k] / reached[0] if reached[0] else None,
                "median_seconds_from_previous": statistics.median(waits) / 1000 if waits else None,
            }
        )
    return out


async def walk_funnel(
    request: Request, steps: list[dict[str, Any]], start: date, end: date
) -> list[dict[str, Any]]:
    service: Service = request.app.state.service
    if service.store is None:
        raise RuntimeError("no store")
    store = service.store
    text, params = funnel_query(steps, start, end)
    [row] = await asyncio.to_thread(store.query_rows, text, params)
    return funnel_steps([step["name"] for step in steps], row)


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
            result["funnels"][name] = await walk_funnel(request, steps, start_date, end_date)
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
