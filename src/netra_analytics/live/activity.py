"""What a request's accepted events change in the live state (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from netra_analytics.ingest.process import AcceptedEvent
from netra_analytics.live.base import Activity
from netra_analytics.prompts.normalise import prompt_hash
from netra_analytics.taxonomy import Context

HOT_PROMPT_TEXT_LIMIT = 500


def activity_from(events: Sequence[AcceptedEvent], context: Context, at_ms: int) -> Activity:
    counters = {"events": float(len(events)), "chat_messages": 0.0, "ai_response_ms_sum": 0.0,
                "ai_response_count": 0.0, "errors": 0.0}  # fmt: skip
    thread_id: str | None = None
    prompts: list[tuple[str, str]] = []
    for event in events:
        props: Any = event.properties
        if event.event_type == "chat_interaction":
            counters["chat_messages"] += 1
            thread_id = props.thread_id
            if props.response_time_ms is not None:
                counters["ai_response_ms_sum"] += props.response_time_ms
                counters["ai_response_count"] += 1
            if props.message_type == "user_prompt" and props.prompt_text:
                text = props.prompt_text  # already sanitised by process()
                prompts.append((prompt_hash(text), text[:HOT_PROMPT_TEXT_LIMIT]))
        elif event.event_type == "thread_lifecycle":
            thread_id = props.thread_id
        elif event.event_type == "error_tracking" or (
            event.event_type in ("performance_metric", "feature_usage") and not props.success
        ):
            counters["errors"] += 1
    return Activity(
        at_ms=at_ms,
        user_id=context.user_id,
        session_id=context.session_id,
        page_path=context.page_path,
        thread_id=thread_id,
        counters=counters,
        by_type=Counter(event.event_type for event in events),
        prompts=prompts,
    )
