"""Edge cases every report must get right: one user, events a millisecond either side of a
day (and month) boundary, an empty range, and an empty store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import body, event
from tests.support.processes import wait_until

MIDNIGHT = datetime(2026, 11, 1, tzinfo=UTC)  # the end of October: a day and a month boundary
BEFORE = MIDNIGHT - timedelta(milliseconds=1)
AFTER = MIDNIGHT


def _at(when: datetime, event_type: str, **props: Any) -> dict[str, Any]:
    e = event(event_type, **props)
    e["timestamp"] = when.isoformat(timespec="milliseconds")
    return e


def _chat(when: datetime, thread: str, kind: str, **props: Any) -> dict[str, Any]:
    return _at(when, "chat_interaction", thread_id=thread, message_id=f"{thread}-{kind}",
               message_type=kind, is_follow_up=False, **props)  # fmt: skip


def _side(when: datetime, thread: str, nps: int, scale: int) -> list[dict[str, Any]]:
    """What the one user does at `when`: a priced chat and its answer, a completed thread,
    an NPS answer and a survey answer."""
    return [
        _chat(when, thread, "user_prompt", prompt_text="How do I cut my AI bill?",
              prompt_length=24, tokens_consumed=50, response_time_ms=None, model_used=None),
        _chat(when, thread, "ai_response", prompt_text=None, prompt_length=24,
              tokens_consumed=400, model_used="gpt-4o-mini", cost_cents=1.25, response_time_ms=900.0),
        _at(when, "thread_lifecycle", thread_id=thread, action="completed"),
        _at(when, "feedback_submission", feedback_type="nps", score=nps, comment=None),
        _at(when, "survey_response", question_type="spending", response_scale=scale,
            ai_spend_last_month=100.0 * scale, ai_spend_next_quarter=None),
    ]  # fmt: skip


@pytest.fixture
def one_user(make_client: Callable[..., TestClient], store: ChdbStore) -> TestClient:
    now = [MIDNIGHT.timestamp() + 60]
    client = make_client(clock=lambda: now[0], event_batch_size=1, event_flush_interval_ms=10)
    events = _side(BEFORE, "t-oct", nps=10, scale=3) + _side(AFTER, "t-nov", nps=2, scale=8)
    reply = client.post("/api/analytics/events", content=orjson.dumps(body(events, user_id="solo")),
                        headers={"content-type": "application/json"})  # fmt: skip
    assert reply.json()["accepted"] == len(events), reply.text

    def settled() -> bool:
        [row] = store.query_rows(
            "SELECT (SELECT count() FROM analytics.frontend_events) AS events, "
            "countIf(JSONExtractBool(signals, 'signals', 'responded')) AS answered "
            "FROM analytics.prompt_analytics FINAL"
        )
        return bool(row["events"] == len(events) and row["answered"] == 2)

    wait_until(settled, timeout=30)
    now[0] = datetime.now(UTC).timestamp()
    return client


def _report(client: TestClient, name: str, first: str, last: str, **extra: str) -> Any:
    reply = client.get(f"/api/analytics/reports/{name}",
                       params={"start_date": first, "end_date": last, **extra})  # fmt: skip
    assert reply.status_code == 200, reply.text
    return reply.json()


OCT, NOV = "2026-10-31", "2026-11-01"


def test_feedback_splits_at_midnight(one_user: TestClient) -> None:
    october = _report(one_user, "feedback", OCT, OCT)
    november = _report(one_user, "feedback", NOV, NOV)
    both = _report(one_user, "feedback", OCT, NOV)
    assert (october["promoters"], october["detractors"], october["nps"]) == (1, 0, 100.0)
    assert (november["promoters"], november["detractors"], november["nps"]) == (0, 1, -100.0)
    assert (both["nps_responses"], both["nps"]) == (2, 0.0)
    [oct_survey] = october["surveys"]
    assert oct_survey["scale_distribution"]["3"] == 1 and oct_survey["scale_distribution"]["8"] == 0
    assert oct_survey["ai_spend_last_month_mean"] == 300.0
    [both_survey] = both["surveys"]
    assert both_survey["responses"] == 2 and both_survey["scale_mean"] == 5.5


def test_spend_splits_at_midnight(one_user: TestClient) -> None:
    october = _report(one_user, "ai-spend", OCT, OCT)
    november = _report(one_user, "ai-spend", NOV, NOV)
    both = _report(one_user, "ai-spend", OCT, NOV)
    for report in (october, november):
        assert report["total_spend_cents"] == pytest.approx(1.25)
        assert report["active_users"] == 1
        assert report["successful_outcomes"] == 1 + (report is october)  # + a promoter's NPS
    assert [d["day"] for d in both["daily"]] == [OCT, NOV]
    assert both["total_spend_cents"] == pytest.approx(2.5)
    assert both["spend_per_active_user_cents"] == pytest.approx(2.5)


def test_user_activity_splits_at_midnight_for_all_and_for_one(one_user: TestClient) -> None:
    for extra in ({}, {"user_id": "solo"}):
        days = _report(one_user, "user-activity", OCT, NOV, **extra)["periods"]
        assert [(p["period"], p["total_events"], p["active_users"]) for p in days] == [
            (OCT, 5, 1),
            (NOV, 5, 1),
        ]
        months = _report(one_user, "user-activity", OCT, NOV, granularity="month", **extra)
        assert [p["total_events"] for p in months["periods"]] == [5, 5]


def test_journeys_of_one_user(one_user: TestClient) -> None:
    both = _report(one_user, "journeys", OCT, NOV)
    onboarding = {s["step"]: s["users"] for s in both["funnels"]["onboarding"]}
    assert onboarding == {"first event": 1, "first chat": 1, "feature discovery": 0,
                          "regular usage": 0}  # fmt: skip
    [cohort] = both["cohorts"]  # the Monday of 31 Oct 2026 is 26 Oct
    assert cohort["cohort"] == "2026-10-26" and cohort["users"] == 1
    assert cohort["retention"] == [1.0]  # 1 Nov is a Sunday: the same week
    assert both["paths"] == []  # one page only


def test_empty_ranges_answer_zeros(one_user: TestClient) -> None:
    far = ("2025-03-01", "2025-03-02")
    assert _report(one_user, "feedback", *far)["nps"] is None
    spend = _report(one_user, "ai-spend", *far)
    assert (spend["total_spend_cents"], spend["active_users"]) == (0, 0)
    journeys = _report(one_user, "journeys", *far)
    assert all(s["users"] == 0 for f in journeys["funnels"].values() for s in f)
    assert journeys["cohorts"] == [] and journeys["paths"] == []


def test_an_empty_store_answers_every_report(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    client = make_client()
    for name in ("user-activity", "feedback", "ai-spend", "journeys"):
        _report(client, name, "2026-11-01", "2026-11-30")
    prompts = client.get("/api/analytics/reports/prompts", params={"time_range": "30d"}).json()
    assert prompts["prompts"] == 0 and prompts["most_frequent"] == []
    assert prompts["follow_up_rate"] is None
    intelligence = client.get("/api/analytics/reports/prompt-intelligence").json()
    assert intelligence["prompts"] == 0


def test_a_user_whose_first_events_expired_is_not_a_new_cohort(
    one_user: TestClient, store: ChdbStore
) -> None:
    """The events' TTL removes a user's first events; their cohort is still the week of them."""
    first = {"event_id": "00000000-0000-4000-8000-000000000001", "user_id": "solo",
             "timestamp": "2026-10-01 12:00:00.000", "session_id": "old", "event_type": "feature_usage",
             "event_category": "interaction", "properties": "{}"}  # fmt: skip
    store.insert_json_rows("frontend_events", orjson.dumps(first))
    store.execute(
        "DELETE FROM analytics.frontend_events WHERE date = '2026-10-01' SETTINGS mutations_sync = 2"
    )
    journeys = _report(one_user, "journeys", OCT, NOV)
    assert journeys["cohorts"] == []  # first seen in the week of 28 Sep, not in this range
    assert _report(one_user, "ai-spend", OCT, NOV)["by_cohort"] == []
    [september] = _report(one_user, "journeys", "2026-09-28", NOV)["cohorts"]
    assert september["cohort"] == "2026-09-28" and september["users"] == 0  # its events are gone
