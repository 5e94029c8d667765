"""`user-activity` and `feedback`: who is active and what they tell us, from ClickHouse."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from netra_analytics.reports.common import (
    DATES_NOTE,
    cached,
    check_range,
    day_after,
    local_midnight,
    long_range,
    number,
    query,
    zone,
)

router = APIRouter(prefix="/api/analytics/reports", tags=["reports"])

# The longest range per granularity, which also bounds the periods of a reply (zeros included):
# at most 745 hours (31 days, one with a clock going back), 366 days, 106 weeks, 37 months.
MAX_DAYS = {"hour": 31, "day": 366, "week": 732, "month": 1096}
HOUR_LABEL = "%Y-%m-%dT%H:00%z"  # the same form as formatDateTime's in user_activity_events.sql


class Granularity(StrEnum):
    hour = "hour"
    day = "day"
    week = "week"
    month = "month"


class ActivityPeriod(BaseModel):
    # The period's start: YYYY-MM-DD, or for hours YYYY-MM-DDTHH:00±HHMM (local time and its
    # offset, so the two 01:00 hours of a night when clocks go back stay apart).
    period: str
    total_events: int
    chat_interactions: int
    threads_created: int
    feature_interactions: int
    tokens_consumed: float
    avg_response_time_ms: float | None  # mean performance_metric duration, as in the summary
    active_users: int


class UserActivity(BaseModel):
    start_date: date
    end_date: date
    granularity: Granularity
    tz: str
    user_id: str | None
    source: str  # which table answered
    periods: list[ActivityPeriod]


def periods(start: date, end: date, granularity: str, tz: Any) -> list[str]:
    """Every period that starts inside [start, end], so that empty ones are reported too: their
    labels as the SQL gives them (`HOUR_LABEL` for hours, else the first day, ISO). The range
    must be within FIRST_DATE..LAST_DATE and MAX_DAYS (check_range), `tz` a ZoneInfo."""
    out: list[str] = []
    if granularity == "hour":
        moment = local_midnight(start, tz).astimezone(UTC)
        stop = local_midnight(day_after(end), tz).astimezone(UTC)
        while moment < stop:
            out.append(moment.astimezone(tz).strftime(HOUR_LABEL))
            moment += timedelta(hours=1)
        return out
    day = start
    if granularity == "week":
        day = start - timedelta(days=start.weekday())
    elif granularity == "month":
        day = start.replace(day=1)
    while day <= end:
        out.append(day.isoformat())
        if granularity == "day":
            day += timedelta(days=1)
        elif granularity == "week":
            day += timedelta(days=7)
        else:
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


@router.get(
    "/user-activity",
    summary="Activity per hour, day, week or month",
    description=(
        "Per period: events, chat interactions, threads created, feature interactions, tokens "
        "consumed, average response time (performance metrics) and active users; periods with "
        "no data are present with zeros. Dates are inclusive and local to `tz` (default UTC). "
        "Weeks start on Monday. All users: read from `activity_rollup` (per UTC day and per "
        "quarter hour, kept by ClickHouse as events arrive). One user (`user_id`): days and "
        "coarser in UTC read the materialized view `user_analytics_summary`; hours, and other "
        "time zones, read that user's `frontend_events`. One user includes the events of the "
        "browsers they signed in on from before they signed in (identity_links). A range "
        "spans at most 31 days for hours, 366 for days, 732 for weeks, 1096 for months; `tz` "
        f"is an IANA zone that both Python and ClickHouse know. {DATES_NOTE}"
    ),
)
async def user_activity(
    request: Request,
    response: Response,
    start_date: date,
    end_date: date,
    granularity: Granularity = Granularity.day,
    user_id: Annotated[str | None, Query(max_length=256)] = None,
    tz: Annotated[str, Query(max_length=64)] = "UTC",
) -> UserActivity:
    check_range(
        start_date, end_date, MAX_DAYS[granularity.value], f" with granularity={granularity.value}"
    )
    where = await zone(request, tz)
    utc_days = granularity != Granularity.hour and tz == "UTC"
    source = (
        "activity_rollup"
        if user_id is None
        else "user_analytics_summary"
        if utc_days
        else "frontend_events"
    )

    async def compute() -> dict[str, Any]:
        params: dict[str, Any] = {"granularity": granularity.value, "user_id": user_id or ""}
        if user_id is not None:  # the person's own id and the browsers linked to them
            linked = await query(request, "person_ids", {"user_id": user_id})
            params["user_ids"] = [user_id, *(row["anonymous_id"] for row in linked)]
        if source == "user_analytics_summary":
            params |= {"start": start_date, "end": end_date}
            rows = await query(request, "user_activity_summary", params)
        else:
            params |= {
                "tz": tz,
                "from": local_midnight(start_date, where).astimezone(UTC),
                "until": local_midnight(day_after(end_date), where).astimezone(UTC),
                "resolution": "day" if utc_days else "quarter_hour",
            }
            name = "user_activity_rollup" if source == "activity_rollup" else "user_activity_events"
            rows = await query(request, name, params)
        found = {_period_key(row["period"], granularity.value): row for row in rows}
        filled = []
        for period in periods(start_date, end_date, granularity.value, where):
            row = found.get(period, {})
            filled.append(
                {
                    "period": period,
                    "total_events": int(row.get("total_events", 0)),
                    "chat_interactions": int(row.get("chat_interactions", 0)),
                    "threads_created": int(row.get("threads_created", 0)),
                    "feature_interactions": int(row.get("feature_interactions", 0)),
                    "tokens_consumed": float(row.get("tokens_consumed", 0.0)),
                    "avg_response_time_ms": number(row.get("avg_response_time_ms")),
                    "active_users": int(row.get("active_users", 0)),
                }
            )
        return {
            "start_date": start_date.isoformat(),
            "end_date": end_date.isoformat(),
            "granularity": granularity.value,
            "tz": tz,
            "user_id": user_id,
            "source": source,
            "periods": filled,
        }

    key = f"user-activity:{start_date}:{end_date}:{granularity.value}:{tz}:{user_id or ''}"
    return UserActivity.model_validate(
        await cached(request, response, key, long_range(start_date, end_date), compute)
    )


def _period_key(value: str, granularity: str) -> str:
    return value if granularity == "hour" else value[:10]


class FeedbackReport(BaseModel):
    start_date: date
    end_date: date
    nps: float | None  # % promoters (9-10) − % detractors (0-6), of NPS answers with a score
    nps_responses: int
    promoters: int
    detractors: int
    csat_percent: float | None  # share of CSAT answers scoring 4 or 5
    csat_mean: float | None
    csat_responses: int
    feature_requests: int
    bug_reports: int
    surveys: list[dict[str, Any]]


@router.get(
    "/feedback",
    summary="NPS, CSAT, feature requests, bug reports and survey answers",
    description=(
        f"Over UTC dates from start_date to end_date, inclusive: at most 1096 days. {DATES_NOTE}"
    ),
)
async def feedback(
    request: Request, response: Response, start_date: date, end_date: date
) -> FeedbackReport:
    check_range(start_date, end_date, 1096)

    async def compute() -> dict[str, Any]:
        params = {"start": start_date, "end": end_date}
        [totals] = await query(request, "feedback", params)
        surveys = await query(request, "survey_responses", params)
        scales = await query(request, "survey_scales", params)
        nps_n, csat_n = int(totals["nps_responses"]), int(totals["csat_responses"])
        by_type: dict[str, dict[str, Any]] = {}
        for row in surveys:
            by_type[row["question_type"]] = {
                "question_type": row["question_type"],
                "responses": int(row["responses"]),
                "scale_mean": number(row["scale_mean"]),
                "scale_distribution": {str(point): 0 for point in range(1, 11)},
                "ai_spend_last_month_mean": number(row["ai_spend_last_month_mean"]),
                "ai_spend_next_quarter_mean": number(row["ai_spend_next_quarter_mean"]),
            }
        for row in scales:
            by_type[row["question_type"]]["scale_distribution"][str(row["scale"])] = int(
                row["responses"]
            )
        return {
            "start_date": start_date.isoformat(),
            "end_date": end_date.isoformat(),
            "nps": 100 * (int(totals["promoters"]) - int(totals["detractors"])) / nps_n
            if nps_n
            else None,
            "nps_responses": nps_n,
            "promoters": int(totals["promoters"]),
            "detractors": int(totals["detractors"]),
            "csat_percent": 100 * int(totals["csat_satisfied"]) / csat_n if csat_n else None,
            "csat_mean": number(totals["csat_mean"]) if csat_n else None,
            "csat_responses": csat_n,
            "feature_requests": int(totals["feature_requests"]),
            "bug_reports": int(totals["bug_reports"]),
            "surveys": list(by_type.values()),
        }

    key = f"feedback:{start_date}:{end_date}"
    return FeedbackReport.model_validate(
        await cached(request, response, key, long_range(start_date, end_date), compute)
    )
