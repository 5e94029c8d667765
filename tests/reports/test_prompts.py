"""prompts and prompt-intelligence against an independent computation over generated chats."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from netra_analytics.prompts.classify import CATEGORIES
from netra_analytics.prompts.cost import PriceTable, Tokens
from netra_analytics.prompts.normalise import prompt_hash
from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import body, event
from tests.support.processes import wait_until

QUESTIONS = [
    "How do I reduce token costs?",
    "Which model is best for summaries?",
    "Why is the API slow today?",
]


def _chat(kind: str, thread: str, when: datetime, **props: Any) -> dict[str, Any]:
    base = {"thread_id": thread, "message_type": kind, "prompt_text": None, "prompt_length": 0,
            "tokens_consumed": None, "model_used": None, "response_time_ms": None, "response_length": None}  # fmt: skip
    e = event("chat_interaction", **{**base, **props})
    e["timestamp"] = when.isoformat()
    return e


@pytest.fixture
def chats(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> tuple[TestClient, list[dict[str, Any]]]:
    client = make_client(event_batch_size=1, event_flush_interval_ms=10)
    rng = random.Random(11)
    start = datetime.now(UTC) - timedelta(minutes=30)
    asked: list[dict[str, Any]] = []
    for n in range(36):
        user = f"u{rng.randrange(4)}"
        when = start + timedelta(seconds=20 * n)
        text = rng.choice(QUESTIONS)
        follow_up = rng.random() < 0.3
        events = [
            _chat(
                "user_prompt",
                f"t{n}",
                when,
                prompt_text=text,
                prompt_length=len(text),
                is_follow_up=follow_up,
            )
        ]
        answered = rng.random() < 0.7
        tokens, ms = 100 + n, 500.0 + 10 * n
        if answered:
            events.append(_chat("ai_response", f"t{n}", when + timedelta(seconds=2), tokens_consumed=tokens,
                                response_time_ms=ms, response_length=300, model_used="gpt-4o-mini"))  # fmt: skip
        failed = answered and rng.random() < 0.25
        if failed:
            error = event("error_tracking")
            error["timestamp"] = (when + timedelta(seconds=5)).isoformat()
            events.append(error)
        reply = client.post("/api/analytics/events", content=orjson.dumps(body(events, user_id=user)),
                            headers={"content-type": "application/json"})  # fmt: skip
        assert reply.json()["accepted"] == len(events)
        asked.append({"user": user, "text": text, "follow_up": follow_up, "answered": answered, "failed": failed,
                      "tokens": tokens, "ms": ms, "when": when, "id": events[0]["event_id"]})  # fmt: skip

    def settled() -> bool:
        rows = store.query_rows("SELECT count() AS n, countIf(JSONExtractBool(signals, 'signals', 'responded')) AS r "
                                "FROM analytics.prompt_analytics FINAL")  # fmt: skip
        return bool(
            rows[0]["n"] == len(asked) and rows[0]["r"] == sum(a["answered"] for a in asked)
        )

    wait_until(settled, timeout=30)
    return client, asked


def test_prompts_report_matches_an_independent_count(
    chats: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    client, asked = chats
    report = client.get(
        "/api/analytics/reports/prompts", params={"min_frequency": 10, "time_range": "24h"}
    ).json()
    assert report["prompts"] == len(asked)

    counts = Counter(prompt_hash(a["text"]) for a in asked)
    expected = sorted(
        ((h, c) for h, c in counts.items() if c >= 10), key=lambda item: (-item[1], item[0])
    )
    assert [(q["prompt_hash"], q["count"]) for q in report["most_frequent"]] == expected
    examples = {prompt_hash(t): t for t in QUESTIONS}
    assert all(q["example"] == examples[q["prompt_hash"]] for q in report["most_frequent"])

    assert report["follow_up_rate"] == pytest.approx(
        sum(a["follow_up"] for a in asked) / len(asked)
    )

    seen: set[tuple[str, str]] = set()
    repeats = []
    for a in sorted(asked, key=lambda a: a["when"]):
        if (a["user"], a["text"]) in seen:
            repeats.append(a)
        seen.add((a["user"], a["text"]))
    assert report["repeat_rate"] == pytest.approx(len(repeats) / len(asked))

    unanswered = {a["id"] for a in asked if not a["answered"] or a["failed"]}
    assert {u["prompt_id"] for u in report["unanswered"]} == unanswered
    assert all(
        u["no_response"]
        for u in report["unanswered"]
        if u["prompt_id"] in {a["id"] for a in asked if not a["answered"]}
    )

    prices = PriceTable.load()
    answered_repeats = [a for a in repeats if a["answered"]]
    savings = report["cache_savings"]
    assert savings["repeated_prompts"] == len(repeats)
    assert savings["output_tokens"] == sum(a["tokens"] for a in answered_repeats)
    assert savings["response_time_ms"] == pytest.approx(sum(a["ms"] for a in answered_repeats))
    today = datetime.now(UTC).date()
    cents = sum(
        prices.cost_cents("gpt-4o-mini", today, Tokens(0, a["tokens"])) or 0.0
        for a in answered_repeats
    )
    assert savings["cost_cents"] == pytest.approx(cents, rel=1e-4)

    assert sum(report["category_distribution"].values()) == len(asked)
    assert set(report["category_distribution"]) <= set(CATEGORIES)
    assert sum(b["prompts"] for b in report["complexity_trend"]) == len(asked)


def test_filters_and_the_intelligence_report(
    chats: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    client, asked = chats
    everything = client.get("/api/analytics/reports/prompts", params={"min_frequency": 1}).json()
    some_category = next(iter(everything["category_distribution"]))
    narrowed = client.get(
        "/api/analytics/reports/prompts", params={"category": some_category, "min_frequency": 1}
    ).json()
    assert narrowed["prompts"] == everything["category_distribution"][some_category]
    assert (
        client.get("/api/analytics/reports/prompts", params={"category": "astrology"}).status_code
        == 422
    )
    assert (
        client.get("/api/analytics/reports/prompts", params={"time_range": "2w"}).status_code == 422
    )
    assert (
        client.get("/api/analytics/reports/prompts", params={"min_frequency": 0}).status_code == 422
    )

    intelligence = client.get("/api/analytics/reports/prompt-intelligence").json()
    assert intelligence["prompts"] == len(asked)
    assert set(intelligence) == {"time_range", "since", "prompts", "most_frequent", "follow_up_rate",
                                 "category_distribution", "intent_distribution", "complexity_trend"}  # fmt: skip
    assert [q["count"] for q in intelligence["most_frequent"]] == sorted(
        Counter(a["text"] for a in asked).values(), reverse=True
    )
    trend = intelligence["complexity_trend"]
    assert len(trend) <= 2 and sum(b["prompts"] for b in trend) == len(asked)  # daily buckets


def test_follow_up_rate_counts_the_range_edges(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    """The rate reads whole minutes from follow_up_minutes; the window starts at the whole
    minute at or before an hour ago: an event just inside it counts, one just outside does not."""
    client = make_client(event_batch_size=1, event_flush_interval_ms=10)
    now = datetime.now(UTC)
    placed = {  # minutes before now -> is_follow_up
        61: True,  # outside the hour
        59: True,  # in the first minute of the window, or the one after
        58: False,
        40: True,
        10: False,
        1: True,
    }
    events = [
        _chat(
            "user_prompt",
            "t-edge",
            now - timedelta(minutes=m),
            message_id=f"m{m}",
            prompt_text=f"question {m}",
            prompt_length=10,
            is_follow_up=follow,
        )
        for m, follow in placed.items()
    ]
    reply = client.post("/api/analytics/events", content=orjson.dumps(body(events, user_id="edge")),
                        headers={"content-type": "application/json"})  # fmt: skip
    assert reply.json()["accepted"] == len(events)
    wait_until(
        lambda: store.query_rows("SELECT count() AS n FROM analytics.frontend_events")[0]["n"] == 6
    )
    report = client.get("/api/analytics/reports/prompts", params={"time_range": "1h"}).json()
    inside = [follow for m, follow in placed.items() if m < 60]
    assert report["follow_up_rate"] == pytest.approx(sum(inside) / len(inside))


def test_the_50_most_frequent_questions_in_order_beside_whole_summaries(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    """The frequent questions share one grouping-sets read with the other summaries: only the
    frequent part is cut to 50, ranked by count then hash; categories and trend stay whole."""
    client = make_client()
    now = datetime.now(UTC)
    rows = []
    for q in range(60):  # question q asked 2 + q % 7 times, by that many users, 5 minutes apart
        for n in range(2 + q % 7):
            at = now - timedelta(hours=2, minutes=5 * (q + n))
            rows.append({"prompt_id": f"00000000-0000-4000-8000-{q:06d}{n:06d}",
                         "timestamp": at.strftime("%Y-%m-%d %H:%M:%S"), "user_id": f"u{n}",
                         "prompt_hash": f"h{q:02d}", "prompt_text": f"question {q}",
                         "prompt_category": CATEGORIES[q % len(CATEGORIES)], "prompt_intent": "question",
                         "prompt_complexity_score": 0.5, "signals": "{}", "version": 1})  # fmt: skip
    store.insert_json_rows("prompt_analytics", b"\n".join(orjson.dumps(r) for r in rows))
    report = client.get(
        "/api/analytics/reports/prompts", params={"time_range": "24h", "min_frequency": 2}
    ).json()
    asked = {f"h{q:02d}": 2 + q % 7 for q in range(60)}
    expected = sorted(asked.items(), key=lambda item: (-item[1], item[0]))[:50]
    assert [(f["prompt_hash"], f["count"], f["users"]) for f in report["most_frequent"]] == [
        (h, n, n) for h, n in expected
    ]
    assert all(
        f["example"] == f"question {int(f['prompt_hash'][1:])}" for f in report["most_frequent"]
    )
    assert report["prompts"] == len(rows)
    assert sum(report["category_distribution"].values()) == len(rows)
    buckets = [t["bucket"] for t in report["complexity_trend"]]
    assert buckets == sorted(buckets) and sum(
        t["prompts"] for t in report["complexity_trend"]
    ) == len(rows)


def test_a_question_asked_before_and_after_signing_in_is_one_person_asking(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    """Askers are people (person_links): the browser's prompt before sign-in is its person's;
    a browser nobody signed in on is a person of its own."""
    client = make_client()
    at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    link = {"user_id": "p-1", "anonymous_id": "b-1", "session_id": "s", "timestamp": at,
            "event_type": "page_view", "event_category": "navigation", "properties": "{}"}  # fmt: skip
    store.insert_json_rows("frontend_events", orjson.dumps(link))
    rows = [
        {"prompt_id": f"00000000-0000-4000-8000-00000000000{n}", "timestamp": at,
         "user_id": who, "prompt_hash": "h-same", "prompt_text": "same question",
         "prompt_category": CATEGORIES[0], "prompt_intent": "question",
         "prompt_complexity_score": 0.5, "signals": "{}", "version": 1}
        for n, who in enumerate(["b-1", "p-1", "p-2", "b-2"])
    ]  # fmt: skip
    store.insert_json_rows("prompt_analytics", b"\n".join(orjson.dumps(r) for r in rows))
    report = client.get(
        "/api/analytics/reports/prompts", params={"time_range": "24h", "min_frequency": 2}
    ).json()
    [same] = report["most_frequent"]
    assert (same["prompt_hash"], same["count"], same["users"]) == ("h-same", 4, 3)
