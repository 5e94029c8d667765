"""`prompts` and `prompt-intelligence`: what people ask, from `prompt_analytics`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from netra_analytics.prompts.classify import CATEGORIES
from netra_analytics.reports.common import cached, invalid, query

router = APIRouter(prefix="/api/analytics/reports", tags=["reports"])


class TimeRange(StrEnum):
    hour = "1h"
    day = "24h"
    week = "7d"
    month = "30d"


SPANS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}

NO_PROMPTS = dict.fromkeys(
    ("prompts", "generated_follow_up", "repeats", "repeat_output_tokens", "repeat_cost_cents",
     "repeat_response_ms"), 0,
)  # fmt: skip


async def prompt_report(
    request: Request,
    category: str | None,
    min_frequency: int,
    time_range: TimeRange,
    unanswered_too: bool = True,
) -> dict[str, Any]:
    if category is not None and category not in CATEGORIES:
        raise invalid("category", f"unknown category {category!r}; one of {', '.join(CATEGORIES)}")
    # The window starts at a whole minute (at most a minute more than asked): follow-ups are
    # counted per minute (follow_up_minutes), and every part of the report uses one window.
    since = (datetime.now(UTC) - SPANS[time_range.value]).replace(second=0, microsecond=0)
    params: dict[str, Any] = {"since": since, "category": category or ""}
    hourly = time_range in (TimeRange.hour, TimeRange.day)
    summary = await query(
        request, "prompts_summary", params | {"hourly": hourly, "min_frequency": min_frequency}
    )
    parts: dict[str, list[dict[str, Any]]] = {
        "overview": [], "categories": [], "trend": [], "frequent": []
    }  # fmt: skip
    for row in summary:
        parts[row["part"]].append(row)
    # No prompts in the range: no overview row (the empty grouping set of nothing is nothing).
    overview = parts["overview"][0] if parts["overview"] else NO_PROMPTS
    categories, trend, frequent = parts["categories"], parts["trend"], parts["frequent"]
    hashes = [row["prompt_hash"] for row in frequent]
    users = {
        row["prompt_hash"]: int(row["users"])
        for row in (
            await query(request, "prompts_frequent_users", params | {"hashes": hashes})
            if hashes
            else []
        )
    }
    [follow] = await query(request, "prompts_follow_up_rate", {"since": since})
    unanswered = await query(request, "prompts_unanswered", params) if unanswered_too else []
    prompts = int(overview["prompts"])
    by_category: dict[str, int] = {}
    by_intent: dict[str, int] = {}
    for row in categories:
        by_category[row["category"]] = by_category.get(row["category"], 0) + int(row["prompts"])
        by_intent[row["intent"]] = by_intent.get(row["intent"], 0) + int(row["prompts"])
    return {
        "time_range": time_range.value,
        "since": since.isoformat(timespec="seconds"),
        "category": category,
        "prompts": prompts,
        "most_frequent": [
            {
                "prompt_hash": r["prompt_hash"],
                "example": r["example"],
                "count": int(r["prompts"]),
                "users": users[r["prompt_hash"]],
                "category": r["example_category"],
            }
            for r in frequent
        ],
        "follow_up_rate": int(follow["follow_ups"]) / int(follow["prompts"])
        if int(follow["prompts"])
        else None,
        "generated_follow_up_rate": int(overview["generated_follow_up"]) / prompts
        if prompts
        else None,
        "category_distribution": by_category,
        "intent_distribution": by_intent,
        "complexity_trend": [
            {
                "bucket": str(r["bucket"]),
                "complexity": float(r["complexity"]),
                "prompts": int(r["prompts"]),
            }
            for r in trend
        ],
        "repeat_rate": int(overview["repeats"]) / prompts if prompts else None,
        "unanswered": [
            {
                "prompt_id": r["prompt_id"],
                "timestamp": r["timestamp"],
                "text": r["text"],
                "category": r["category"],
                "no_response": bool(r["no_response"]),
                "errors_after": int(r["errors_after"]),
            }
            for r in unanswered
        ],
        "cache_savings": {
            "repeated_prompts": int(overview["repeats"]),
            "output_tokens": int(overview["repeat_output_tokens"]),
            "cost_cents": float(overview["repeat_cost_cents"]),
            "response_time_ms": float(overview["repeat_response_ms"]),
        },
    }


@router.get(
    "/prompts",
    summary="Prompt patterns and trends",
    description=(
        "The most frequent questions (same normalised text; one sanitised example, asked at "
        "least `min_frequency` times), follow-up rate (prompts the client marked as follow-ups) "
        "and the share of prompts that led to one, category and intent distribution, complexity "
        "trend (hourly for 1h/24h, daily otherwise), repeat rate, unanswered questions (no AI "
        "response, or an error after it), and what answering repeated questions from a cache "
        "would have saved (their answers' output tokens, estimated cost and response time). "
        "The window starts at the whole UTC minute at or before now minus `time_range` "
        "(`since` in the reply)."
    ),
)
async def prompts(
    request: Request,
    response: Response,
    category: Annotated[str | None, Query(max_length=64)] = None,
    min_frequency: Annotated[int, Query(ge=1, le=1_000_000)] = 5,
    time_range: TimeRange = TimeRange.day,
) -> dict[str, Any]:
    key = f"prompts:{category}:{min_frequency}:{time_range.value}"
    long_range = time_range in (TimeRange.week, TimeRange.month)
    result: dict[str, Any] = await cached(
        request,
        response,
        key,
        long_range,
        lambda: prompt_report(request, category, min_frequency, time_range),
    )
    return result


@router.get(
    "/prompt-intelligence",
    summary="The Prompt Intelligence Report",
    description=(
        "Most frequently asked questions, follow-up question rate, prompt category distribution "
        "and prompt complexity trend, over the last `time_range` (default 7 days), from the whole "
        "UTC minute at or before its start (`since`)."
    ),
)
async def prompt_intelligence(
    request: Request, response: Response, time_range: TimeRange = TimeRange.week
) -> dict[str, Any]:
    async def compute() -> dict[str, Any]:
        full = await prompt_report(request, None, 2, time_range, unanswered_too=False)
        keep = ("time_range", "since", "prompts", "most_frequent", "follow_up_rate",
                "category_distribution", "intent_distribution", "complexity_trend")  # fmt: skip
        return {name: full[name] for name in keep}

    result: dict[str, Any] = await cached(
        request, response, f"prompt-intelligence:{time_range.value}",
        time_range in (TimeRange.week, TimeRange.month), compute,
    )  # fmt: skip
    return result
