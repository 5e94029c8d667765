"""Payloads for tests: one valid example per event type, and seeded random events."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

EXAMPLES: dict[str, dict[str, Any]] = {
    "chat_interaction": {
        "thread_id": "thread-1",
        "message_id": "msg-1",
        "message_type": "user_prompt",
        "prompt_text": "How do I cut my GPT-4 spend?",
        "prompt_length": 28,
        "response_length": 0,
        "response_time_ms": 850.5,
        "model_used": "gpt-4o",
        "tokens_consumed": 120,
        "is_follow_up": False,
    },
    "thread_lifecycle": {
        "thread_id": "thread-1",
        "action": "created",
        "message_count": 1,
        "duration_seconds": 0.0,
    },
    "feature_usage": {
        "feature_name": "cost_explorer",
        "action": "open",
        "success": True,
        "duration_ms": 42.0,
    },
    "survey_response": {
        "survey_id": "q4-pulse",
        "question_id": "q1",
        "question_type": "spending",
        "response_value": "about 2k a month",
        "response_scale": 7,
        "ai_spend_last_month": 2000.0,
        "ai_spend_next_quarter": 7500.0,
    },
    "feedback_submission": {
        "feedback_type": "nps",
        "score": 9,
        "comment": "Great insight into costs",
        "context_thread_id": "thread-1",
    },
    "performance_metric": {
        "metric_type": "page_load",
        "duration_ms": 1234.5,
        "success": True,
    },
    "error_tracking": {
        "error_type": "TypeError",
        "error_message": "x is undefined",
        "stack_trace": "at main.js:1:1",
        "user_impact": "medium",
    },
}

REQUIRED: dict[str, list[str]] = {
    "chat_interaction": [
        "thread_id",
        "message_id",
        "message_type",
        "prompt_length",
        "is_follow_up",
    ],
    "thread_lifecycle": ["thread_id", "action"],
    "feature_usage": ["feature_name", "action", "success"],
    "survey_response": ["survey_id", "question_id", "question_type"],
    "feedback_submission": ["feedback_type"],
    "performance_metric": ["metric_type", "duration_ms", "success"],
    "error_tracking": ["error_type", "error_message", "user_impact"],
}

ENUMS: dict[str, dict[str, list[str]]] = {
    "chat_interaction": {"message_type": ["user_prompt", "ai_response", "system_message"]},
    "thread_lifecycle": {"action": ["created", "continued", "completed", "abandoned"]},
    "survey_response": {"question_type": ["pain_perception", "magic_wand", "spending", "planning"]},
    "feedback_submission": {"feedback_type": ["nps", "csat", "feature_request", "bug_report"]},
    "performance_metric": {"metric_type": ["page_load", "api_call", "websocket", "render"]},
    "error_tracking": {"user_impact": ["critical", "high", "medium", "low"]},
}


# What a desktop browser sends. HTTP libraries' own user agents (python-httpx, curl) are on the
# bot list, and a bot's events are kept out of frontend_events.
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def event(event_type: str, **properties: Any) -> dict[str, Any]:
    props = {**EXAMPLES[event_type], **properties}
    return {
        "event_type": event_type,
        "timestamp": datetime.now(UTC).isoformat(),
        "event_id": str(uuid.uuid4()),
        "properties": {k: v for k, v in props.items() if v is not None},
    }


def body(events: list[Any], user_id: str = "user-1", **context: Any) -> dict[str, Any]:
    return {
        "events": events,
        "context": {
            "user_id": user_id,
            "session_id": f"session-{user_id}",
            "page_path": "/chat",
            **context,
        },
    }


def random_event(rng: random.Random, when: datetime | None = None) -> dict[str, Any]:
    """A valid event of a random type with random values (what a real session sends)."""
    event_type = rng.choice(list(EXAMPLES))
    props = dict(EXAMPLES[event_type])
    if event_type == "chat_interaction":
        props.update(
            message_type=rng.choice(["user_prompt", "ai_response"]),
            tokens_consumed=rng.randint(0, 4000),
            is_follow_up=rng.random() < 0.3,
            message_id=f"m{rng.randrange(10**9)}",
        )
        if rng.random() < 0.5:
            props.pop("response_time_ms")
        else:
            props["response_time_ms"] = round(rng.uniform(100, 5000), 3)
    elif event_type == "thread_lifecycle":
        props["action"] = rng.choice(["created", "continued", "completed", "abandoned"])
        props["message_count"] = rng.randint(1, 40)
    elif event_type == "performance_metric":
        props["duration_ms"] = round(rng.uniform(1, 3000), 3)
        props["success"] = rng.random() < 0.9
    elif event_type == "feature_usage":
        props["duration_ms"] = round(rng.uniform(1, 500), 3)
    result = event(event_type, **props)
    if when is not None:
        result["timestamp"] = when.isoformat()
    return result


def people(sends: Iterable[tuple[str | None, str, datetime]]) -> Callable[[str | None, str], str]:
    """Whose events they are, as the reports decide (person_links), from what was sent:
    `(user, browser, event time)` per event, user None when signed out. The result maps one
    event's `(user, browser)` to its person: a signed-in event is its user's; a signed-out one
    belongs to the user who signed in on that browser first (earliest event time), or to the
    browser itself while nobody has."""
    first: dict[str, tuple[datetime, str]] = {}
    for user, browser, at in sends:
        if user is not None and (browser not in first or at < first[browser][0]):
            first[browser] = (at, user)

    def person(user: str | None, browser: str) -> str:
        return user if user is not None else first[browser][1] if browser in first else browser

    return person
