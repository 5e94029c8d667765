"""`ai-spend`: what AI costs, per user, per outcome, per model, and where it is heading."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from netra_analytics.reports.common import (
    DATES_NOTE,
    cached,
    check_range,
    long_range,
    number,
    query,
)
from netra_analytics.reports.journeys import configured_funnels, walk_funnels

router = APIRouter(prefix="/api/analytics/reports", tags=["reports"])

PROJECTION_DAYS = 30


def projected_cents(daily: list[tuple[date, float]], start: date, end: date) -> float:
    """Spend over the next 30 days from a least-squares line through the daily spend of the
    range (days without spend count as 0); never below zero."""
    return sum(projected_days(daily, start, end))


def projected_days(daily: list[tuple[date, float]], start: date, end: date) -> list[float]:
    """The spend of each of the 30 days after `end` on the least-squares line through the
    daily spend of start..end (days without spend count as 0), each never below zero."""
    by_day = dict(daily)
    days = [(start + timedelta(days=i)) for i in range((end - start).days + 1)]
    xs = list(range(len(days)))
    ys = [by_day.get(day, 0.0) for day in days]
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = (
        sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
        if spread
        else 0.0
    )
    intercept = mean_y - slope * mean_x
    future = range(n, n + PROJECTION_DAYS)
    return [max(0.0, intercept + slope * x) for x in future]


@router.get(
    "/ai-spend",
    summary="AI spend: total, per active user, per successful outcome, by model, projected",
    description=(
        "Over UTC dates from start_date to end_date. Spend is the cost events reported "
        "(`cost_cents`) where they did, else the estimate from tokens and the price table. A "
        "successful outcome is a completed thread or positive feedback (NPS 9-10, CSAT 4-5). "
        "The projection extends a least-squares line through the daily spend over the next "
        "30 days. Survey answers (`ai_spend_last_month`, `ai_spend_next_quarter`) are shown "
        "beside it as reported, in the survey's own units. By cohort: a cohort's spend over "
        "the users of the cohort who came back in a later week; by funnel: spend over the users "
        f"who reached the funnel's last step. At most 366 days. {DATES_NOTE}"
    ),
)
async def ai_spend(
    request: Request, response: Response, start_date: date, end_date: date
) -> dict[str, Any]:
    check_range(start_date, end_date, 366)

    async def compute() -> dict[str, Any]:
        params = {"start": start_date, "end": end_date}
        spend = await query(request, "spend_by_model_and_day", params)
        models = [row for row in spend if row["by"] == "model"]
        daily = [row for row in spend if row["by"] == "day"]
        [outcomes] = await query(request, "spend_outcomes", params)
        total = sum(float(row["cents"]) for row in models)
        successes = int(outcomes["threads_completed"]) + int(outcomes["positive_feedback"])
        series = [(date.fromisoformat(row["day"]), float(row["cents"])) for row in daily]
        cohorts = await query(request, "spend_cohorts", params)
        conversions = {}
        funnels = configured_funnels(request)
        walk = await walk_funnels(request, funnels, start_date, end_date)
        users = walk.active_users  # counted in the funnels' pass over the events
        for name, steps in walk.funnels.items():
            converted = steps[-1]["users"]
            conversions[name] = {
                "conversions": converted,
                "cost_per_conversion_cents": total / converted if converted else None,
            }
        return {
            "start_date": start_date.isoformat(),
            "end_date": end_date.isoformat(),
            "total_spend_cents": total,
            "active_users": users,
            "spend_per_active_user_cents": total / users if users else None,
            "successful_outcomes": successes,
            "cost_per_successful_outcome_cents": total / successes if successes else None,
            "by_model": [
                {
                    "model": row["model"] or "(unknown)",
                    "prompts": int(row["prompts"]),
                    "spend_cents": float(row["cents"]),
                    "reported_costs": int(row["reported"]),
                }
                for row in models
            ],
            "daily": [{"day": day.isoformat(), "spend_cents": cents} for day, cents in series],
            "projected_next_30_days_cents": projected_cents(series, start_date, end_date),
            "by_cohort": [
                {
                    "cohort": row["cohort"],
                    "users": int(row["users"]),
                    "retained_users": int(row["retained_users"]),
                    "spend_cents": float(row["cents"]),
                    "cost_per_retained_user_cents": float(row["cents"]) / int(row["retained_users"])
                    if int(row["retained_users"])
                    else None,
                }
                for row in cohorts
            ],
            "by_funnel_conversion": conversions,
            "survey_reported": {
                "ai_spend_last_month_mean": number(outcomes["reported_last_month"]),
                "ai_spend_next_quarter_mean": number(outcomes["reported_next_quarter"]),
            },
        }

    key = f"ai-spend:{start_date}:{end_date}"
    result: dict[str, Any] = await cached(
        request, response, key, long_range(start_date, end_date), compute
    )
    return result
