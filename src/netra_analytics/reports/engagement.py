"""Real-time engagement, from the live state: visible within a second of an event's arrival."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel

from netra_analytics.live.base import engagement
from netra_analytics.service import Service

router = APIRouter(prefix="/api/analytics/reports", tags=["reports"])


class EngagementReport(BaseModel):
    as_of: datetime
    active_users: int
    active_chat_sessions: int
    avg_ai_response_time_ms: float | None
    error_rate_percent: float | None
    events_per_second: float
    events_last_5_minutes: int
    source: str


class HotPrompt(BaseModel):
    prompt_hash: str
    text: str
    count: int


@router.get(
    "/engagement",
    summary="User engagement now (the spec's User Engagement Dashboard)",
    description=(
        "Active users and active chat sessions (distinct, last 5 minutes, 10-second buckets), "
        "average AI response time (chat events' response_time_ms, last 5 minutes), error rate "
        "(error_tracking events and failed performance_metric/feature_usage events as a share "
        "of all events, last 5 minutes), events per second over the last minute. `source` says "
        "whether the numbers come from Redis (all workers) or this process only."
    ),
)
async def engagement_report(request: Request, response: Response) -> EngagementReport:
    service: Service = request.app.state.service
    now_ms = int(service.clock() * 1000)
    totals, source = await service.live.totals(now_ms)
    numbers = engagement(totals, now_ms)
    response.headers["cache-control"] = "no-store"
    return EngagementReport(
        as_of=datetime.fromtimestamp(numbers.as_of_ms / 1000, UTC),
        active_users=numbers.active_users,
        active_chat_sessions=numbers.active_chat_sessions,
        avg_ai_response_time_ms=numbers.avg_ai_response_ms,
        error_rate_percent=numbers.error_rate_percent,
        events_per_second=numbers.events_per_second,
        events_last_5_minutes=numbers.events_last_5_minutes,
        source=source,
    )


@router.get(
    "/hot-prompts",
    summary="Prompts asked most in the last 30 minutes (sanitised text)",
)
async def hot_prompts(
    request: Request, response: Response, limit: Annotated[int, Query(ge=1, le=100)] = 10
) -> list[HotPrompt]:
    service: Service = request.app.state.service
    hot = await service.live.hot_prompts(int(service.clock() * 1000), limit)
    response.headers["cache-control"] = "no-store"
    return [HotPrompt(prompt_hash=h, text=t, count=c) for h, t, c in hot]


@router.get(
    "/sessions/{session_id}",
    summary="A live session (the spec's user_session_cache), for real-time personalisation",
    description=(
        "user_id, first_seen and last_seen (epoch ms), event_count, current_page, "
        "current_thread and pages_visited; 404 once the session has been idle for an hour."
    ),
    responses={404: {"description": "No live session of this id"}},
)
async def live_session(request: Request, response: Response, session_id: str) -> dict[str, str]:
    service: Service = request.app.state.service
    found = await service.live.session(session_id, int(service.clock() * 1000))
    if found is None:
        raise HTTPException(status_code=404, detail=f"no live session {session_id!r}")
    response.headers["cache-control"] = "no-store"
    return found
