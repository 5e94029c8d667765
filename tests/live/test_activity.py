"""`live.activity.activity_from`: what a request's accepted events add to the live state, checked
against a plain count of the same events."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from netra_analytics.ingest.process import RequestInfo, process
from netra_analytics.live.activity import HOT_PROMPT_TEXT_LIMIT, activity_from
from netra_analytics.prompts.normalise import prompt_hash
from tests.factories import EXAMPLES, body, event

T0 = 1_764_000_000_000

_TEXT = st.text(alphabet="abcdef ?!", min_size=1, max_size=600)


@st.composite
def _event(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(sorted(EXAMPLES)))
    properties = dict(EXAMPLES[event_type])
    if "success" in properties:
        properties["success"] = draw(st.booleans())
    if event_type in ("chat_interaction", "thread_lifecycle"):
        properties["thread_id"] = draw(st.sampled_from(["t-1", "t-2", "t-3"]))
    if event_type == "chat_interaction":
        properties["message_type"] = draw(
            st.sampled_from(["user_prompt", "ai_response", "system_message"])
        )
        properties["response_time_ms"] = draw(st.none() | st.floats(0, 60_000))
        properties["prompt_text"] = draw(st.none() | _TEXT)
    return event(event_type, **properties)


def _expected(events: list[dict[str, Any]], texts: list[str | None]) -> dict[str, Any]:
    """The same figures by the taxonomy's rules, one event at a time."""
    chats = [e for e in events if e["event_type"] == "chat_interaction"]
    timed = [e["properties"].get("response_time_ms") for e in chats]
    threads = [
        e["properties"]["thread_id"]
        for e in events
        if e["event_type"] in ("chat_interaction", "thread_lifecycle")
    ]
    errors = sum(
        e["event_type"] == "error_tracking"
        or (
            e["event_type"] in ("performance_metric", "feature_usage")
            and not e["properties"]["success"]
        )
        for e in events
    )
    prompts = [
        (prompt_hash(text), text[:HOT_PROMPT_TEXT_LIMIT])
        for e, text in zip(events, texts, strict=True)
        if e["event_type"] == "chat_interaction"
        and e["properties"]["message_type"] == "user_prompt"
        and text
    ]
    return {
        "counters": {
            "events": float(len(events)),
            "chat_messages": float(len(chats)),
            "ai_response_ms_sum": sum(t for t in timed if t is not None),
            "ai_response_count": float(sum(t is not None for t in timed)),
            "errors": float(errors),
        },
        "by_type": dict(Counter(e["event_type"] for e in events)),
        "thread_id": threads[-1] if threads else None,
        "prompts": prompts,
    }


@settings(max_examples=80, deadline=None)
@given(st.lists(_event(), min_size=1, max_size=20))
def test_an_activity_counts_what_its_events_say(events: list[dict[str, Any]]) -> None:
    info = RequestInfo(received_at=datetime.now(UTC), max_event_age=timedelta(days=1))
    batch = process(orjson.dumps(body(events, session_id="s-1", page_path="/chat")), info)
    assert len(batch.accepted) == len(events), batch.rejected
    texts = [getattr(e.properties, "prompt_text", None) for e in batch.accepted]  # sanitised
    activity = activity_from(batch.accepted, batch.context, T0)
    expected = _expected(events, texts)
    assert activity.counters == expected["counters"]
    assert dict(activity.by_type) == expected["by_type"]
    assert activity.thread_id == expected["thread_id"]
    assert list(activity.prompts) == expected["prompts"]
    assert (activity.at_ms, activity.user_id, activity.session_id, activity.page_path) == (
        T0,
        "user-1",
        "s-1",
        "/chat",
    )
