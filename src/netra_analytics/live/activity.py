"""What a request's accepted events change in the live state (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from netra_analytics.ingest.process import AcceptedEvent
from netra_analytics.live.base import Activity
from netra_analytics.prompts.normalise import prompt_hash
from netra_analytics.taxonomy import Context

HOT_PROMPT_TEXT_LIMIT = 500


def activity_from(events: Sequence[AcceptedEvent], context: Context, at_ms: int) -> Activity:
    """The live-state update of one request's accepted `events` (all of `context`), at `at_ms`
    (epoch ms).

    One pass over the events with local sums and a plain dict per type: it runs once per
    request on the event loop, where the two passes, the dict of running counters and the
    `Counter` it replaced cost 12-13 µs of the loop's CPU per one-event request under load
    (`time.thread_time_ns` around it, 2 workers at full speed; 2.6 µs in a quiet `timeit`)."""
    chats = response_ms = responses = errors = 0.0
    thread_id: str | None = None
    prompts: list[tuple[str, str]] = []
    by_type: dict[str, int] = {}
    for event in events:
        event_type = event.event_type
        by_type[event_type] = by_type.get(event_type, 0) + 1
        props: Any = event.properties
        if event_type == "chat_interaction":
            chats += 1
            thread_id = props.thread_id
            if props.response_time_ms is not None:
                response_ms += props.response_time_ms
                responses += 1
            if props.message_type == "user_prompt" and props.prompt_text:
                text = props.prompt_text  # already sanitised by process()
                prompts.append((prompt_hash(text), text[:HOT_PROMPT_TEXT_LIMIT]))
        elif event_type == "thread_lifecycle":
            thread_id = props.thread_id
        elif event_type == "error_tracking" or (
            event_type in ("performance_metric", "feature_usage") and not props.success
        ):
            errors += 1
    counters = {"events": float(len(events)), "chat_messages": chats,
                "ai_response_ms_sum": response_ms, "ai_response_count": responses,
                "errors": errors}  # fmt: skip
    return Activity(
        at_ms, context.user_id, context.session_id, context.page_path, thread_id, counters,
        by_type, prompts,
    )  # fmt: skip
