"""ai-spend against an independent computation over generated, priced conversations."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy
import orjson
import pytest
from fastapi.testclient import TestClient

from netra_analytics.prompts.cost import PriceTable, Tokens
from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import body, event, people
from tests.reports.test_prompts import _chat
from tests.support.processes import wait_until

FIRST = datetime(2026, 11, 12, 9, tzinfo=UTC)  # Thursday: the six days reach into the next week
DAYS = 6
MODELS = ["gpt-4o-mini", "claude-3-5-haiku-20241022"]


class Clock:
    def __init__(self) -> None:
        self.now = FIRST.timestamp()

    def __call__(self) -> float:
        return self.now


def test_ai_spend(make_client: Callable[..., TestClient], store: ChdbStore) -> None:
    clock = Clock()
    client = make_client(clock=clock, event_batch_size=1, event_flush_interval_ms=10)
    prices = PriceTable.load()
    rng = random.Random(17)
    spend: dict[str, float] = defaultdict(float)
    by_model: dict[str, float] = defaultdict(float)
    # Who sent each prompt: (user or None when signed out, browser, time, cents). Browsers are
    # shared, so a signed-out prompt is that of whoever signed in on its browser first.
    sends: list[tuple[str | None, str, datetime, float]] = []
    successes = 0
    prompts = 0
    survey_last: list[float] = []
    for day in range(DAYS):
        for n in range(4 + day):  # spend grows day by day
            user = f"u{rng.randrange(5)}" if rng.random() < 0.7 else None
            browser = f"b{rng.randrange(4)}"
            when = FIRST + timedelta(days=day, minutes=5 * n)
            model = rng.choice(MODELS)
            prompt_tokens, answer_tokens = rng.randint(10, 200), rng.randint(100, 2000)
            thread = f"t{day}-{n}"
            events = [_chat("user_prompt", thread, when, prompt_text="How do I lower my AI bill?", prompt_length=26,
                            tokens_consumed=prompt_tokens, is_follow_up=False)]  # fmt: skip
            reported = rng.random() < 0.3
            answer: dict[str, Any] = {
                "tokens_consumed": answer_tokens,
                "model_used": model,
                "response_time_ms": 800.0,
                "response_length": 100,
            }
            if reported:
                answer["cost_cents"] = round(rng.uniform(0.01, 2.0), 4)
            events.append(_chat("ai_response", thread, when + timedelta(seconds=3), **answer))
            if rng.random() < 0.5:
                done = event("thread_lifecycle", thread_id=thread, action="completed")
                done["timestamp"] = (when + timedelta(seconds=9)).isoformat()
                events.append(done)
                successes += 1
            if rng.random() < 0.3:
                score = rng.choice([3, 9, 10])
                liked = event(
                    "feedback_submission",
                    feedback_type="nps",
                    score=score,
                    context_thread_id=thread,
                )
                liked["timestamp"] = (when + timedelta(seconds=12)).isoformat()
                events.append(liked)
                successes += score >= 9
            if rng.random() < 0.2:
                amount = float(rng.randint(100, 5000))
                survey = event(
                    "survey_response", question_type="spending", ai_spend_last_month=amount
                )
                survey["timestamp"] = (when + timedelta(seconds=15)).isoformat()
                events.append(survey)
                survey_last.append(amount)
            clock.now = (when + timedelta(seconds=20)).timestamp()
            payload = body(events, user_id=user or "", anonymous_id=browser, session_id=thread)
            reply = client.post("/api/analytics/events", content=orjson.dumps(payload),
                                headers={"content-type": "application/json"})  # fmt: skip
            assert reply.json()["accepted"] == len(events), reply.text
            cents = (
                answer["cost_cents"]
                if reported
                else prices.cost_cents(model, when.date(), Tokens(prompt_tokens, answer_tokens))
            )
            assert cents is not None
            spend[when.date().isoformat()] += cents
            by_model[model] += cents
            sends.append((user, browser, when, cents))
            prompts += 1
    person = people((user, browser, when) for user, browser, when, _ in sends)
    users: set[str] = set()
    user_spend: dict[str, float] = defaultdict(float)
    user_weeks: dict[str, set[date]] = defaultdict(set)
    for user, browser, when, cents in sends:
        who = person(user, browser)
        users.add(who)
        user_spend[who] += cents
        user_weeks[who].add(when.date() - timedelta(days=when.weekday()))
    assert len(users) < len({user or browser for user, browser, _, _ in sends})  # it matters

    def settled() -> bool:
        [row] = store.query_rows("SELECT count() AS n, countIf(JSONExtractBool(signals, 'signals', 'responded')) AS r "
                                 "FROM analytics.prompt_analytics FINAL")  # fmt: skip
        return bool(row["n"] == prompts and row["r"] == prompts)

    wait_until(settled, timeout=30)
    clock.now = datetime.now(UTC).timestamp()

    start, end = FIRST.date(), FIRST.date() + timedelta(days=DAYS - 1)
    report = client.get(
        "/api/analytics/reports/ai-spend",
        params={"start_date": start.isoformat(), "end_date": end.isoformat()},
    ).json()
    total = sum(spend.values())
    assert report["total_spend_cents"] == pytest.approx(total, rel=1e-4)
    assert report["active_users"] == len(users)
    assert report["spend_per_active_user_cents"] == pytest.approx(total / len(users), rel=1e-4)
    assert report["successful_outcomes"] == successes
    assert report["cost_per_successful_outcome_cents"] == pytest.approx(total / successes, rel=1e-4)
    assert {m["model"]: m["spend_cents"] for m in report["by_model"]} == pytest.approx(
        dict(by_model), rel=1e-4
    )
    assert [d["day"] for d in report["daily"]] == sorted(spend)
    ys = [spend[(start + timedelta(days=i)).isoformat()] for i in range(DAYS)]
    slope, intercept = numpy.polyfit(range(DAYS), ys, 1)
    expected_projection = sum(max(0.0, intercept + slope * x) for x in range(DAYS, DAYS + 30))
    assert report["projected_next_30_days_cents"] == pytest.approx(expected_projection, rel=1e-3)
    assert report["survey_reported"]["ai_spend_last_month_mean"] == pytest.approx(
        sum(survey_last) / len(survey_last)
    )

    empty = client.get(
        "/api/analytics/reports/ai-spend",
        params={"start_date": "2025-01-01", "end_date": "2025-01-02"},
    ).json()
    assert empty["total_spend_cents"] == 0 and empty["spend_per_active_user_cents"] is None
    assert empty["projected_next_30_days_cents"] == 0
    assert (
        client.get(
            "/api/analytics/reports/ai-spend",
            params={"start_date": "2026-01-02", "end_date": "2026-01-01"},
        ).status_code
        == 422
    )
    assert date.fromisoformat(report["start_date"]) == start

    cohorts: dict[date, dict[str, Any]] = defaultdict(
        lambda: {"users": 0, "retained": 0, "cents": 0.0}
    )
    for user, weeks in user_weeks.items():
        cohort = cohorts[min(weeks)]
        cohort["users"] += 1
        cohort["retained"] += len(weeks) > 1
        cohort["cents"] += user_spend[user]
    got = {row["cohort"]: row for row in report["by_cohort"]}
    assert set(got) == {c.isoformat() for c in cohorts}
    for monday, expected in cohorts.items():
        row = got[monday.isoformat()]
        assert (row["users"], row["retained_users"]) == (expected["users"], expected["retained"])
        assert row["spend_cents"] == pytest.approx(expected["cents"], rel=1e-4)
        if expected["retained"]:
            assert row["cost_per_retained_user_cents"] == pytest.approx(
                expected["cents"] / expected["retained"], rel=1e-4
            )
    assert any(row["retained_users"] for row in report["by_cohort"])
    # No feature use or complex prompt in this data: nobody finishes either funnel.
    for funnel in report["by_funnel_conversion"].values():
        assert funnel == {"conversions": 0, "cost_per_conversion_cents": None}
