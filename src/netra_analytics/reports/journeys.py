"""`journeys`: the two funnels of the spec, weekly cohort retention, and session paths.

The funnels are defined and walked in `reports/funnels.py`; here each step's users become
conversions and median waits. A user enters a funnel through an event (or prompt) in the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from netra_analytics.reports.common import (
    DATES_NOTE,
    cached,
    check_range,
    invalid,
    long_range,
    number,
    query,
    ready_store,
    run_report,
)
from netra_analytics.reports.funnel_walks import funnel_totals
from netra_analytics.reports.funnels import Funnels, load_funnels
from netra_analytics.reports.paths import page_moves
from netra_analytics.service import Service

router = APIRouter(prefix="/api/analytics/reports", tags=["reports"])


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


def configured_funnels(request: Request) -> Funnels:
    """The funnel definitions, read for each report (an edited file applies at once); one
    that became unreadable since start-up is a 503 saying why, not a 500."""
    service: Service = request.app.state.service
    try:
        return load_funnels(service.settings.funnels_file)
    except (OSError, ValueError) as exc:
        raise HTTPException(
            status_code=503,
            detail=f"the funnel definitions (ANALYTICS_FUNNELS) are unusable: {exc}",
        ) from None


@dataclass(frozen=True)
class FunnelWalk:
    funnels: dict[str, list[dict[str, Any]]]  # per funnel, its steps as funnel_steps gives them
    active_users: int  # users with an event in the range


async def walk_funnels(request: Request, funnels: Funnels, start: date, end: date) -> FunnelWalk:
    """Every funnel's steps: users reached, conversions and median waits, from one query (on
    the walks computed ahead where they hold, reports/funnel_walks.py)."""
    row = await run_report(request, funnel_totals, ready_store(request), funnels, start, end)
    return FunnelWalk(
        funnels={
            name: funnel_steps([step["name"] for step in steps], row, f"f{i}")
            for i, (name, steps) in enumerate(funnels.items())
        },
        active_users=int(row["active_users"]),
    )


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
        "(days that can no longer change are computed once and kept). At most 366 days. "
        + DATES_NOTE
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
    funnels = configured_funnels(request)
    if funnel is not None and funnel not in funnels:
        raise invalid("funnel", f"unknown funnel {funnel!r}; one of {', '.join(funnels)}")

    async def compute() -> dict[str, Any]:
        result: dict[str, Any] = {
            "start_date": start_date.isoformat(),
            "end_date": end_date.isoformat(),
        }
        # All funnels are walked (the walks computed ahead are of all of them), one is shown.
        walked = (await walk_funnels(request, funnels, start_date, end_date)).funnels
        result["funnels"] = {name: walked[name] for name in ([funnel] if funnel else walked)}
        params = {"start": start_date, "end": end_date}
        result["cohorts"] = retention(await query(request, "journey_cohorts", params))
        result["paths"] = await run_report(
            request, page_moves, ready_store(request), start_date, end_date, paths
        )
        return result

    key = f"journeys:{start_date}:{end_date}:{funnel}:{paths}"
    answer: dict[str, Any] = await cached(
        request, response, key, long_range(start_date, end_date), compute
    )
    return answer
