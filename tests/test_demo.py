"""`netra-analytics demo`: valid, deterministic traffic, and the reports' headline numbers on a
real service equal to counts over the generated events in Python."""

from __future__ import annotations

import io
import os
import subprocess
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import orjson
import pytest

from netra_analytics import demo
from netra_analytics.app import import_schema
from netra_analytics.ingest.bots import is_bot
from netra_analytics.ingest.process import EVENT_RETENTION, IMPORT, RequestInfo, process
from netra_analytics.prompts.classify import CATEGORIES, default_classifier
from netra_analytics.prompts.complexity import complexity
from netra_analytics.reports.funnels import load_funnels
from netra_analytics.taxonomy import json_schema
from tests.support.processes import CLI, ServiceProcess, wait_until

NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return demo.generate(users=120, days=21, seed=7, now=NOW)


def test_every_event_validates_under_the_import(events: list[dict[str, Any]]) -> None:
    info = RequestInfo(received_at=NOW, max_event_age=EVENT_RETENTION)
    for start in range(0, len(events), IMPORT.max_events):
        chunk = events[start : start + IMPORT.max_events]
        body = orjson.dumps({"events": chunk})
        assert len(body) <= IMPORT.max_body_bytes
        batch = process(body, info, IMPORT)
        assert [r.reply() for r in batch.rejected] == []
        assert len(batch.accepted) == len(chunk)
    assert not any(is_bot(e["context"]["user_agent"]) for e in events)


def test_every_event_matches_the_published_import_schema(events: list[dict[str, Any]]) -> None:
    validator = jsonschema.Draft202012Validator(import_schema(json_schema()))
    assert list(validator.iter_errors({"events": events[: IMPORT.max_events]})) == []
    assert list(validator.iter_errors({"events": [{**events[0], "timestamp": None}]}))


def test_the_same_seed_gives_the_same_events_and_another_seed_others(
    events: list[dict[str, Any]],
) -> None:
    assert demo.generate(users=120, days=21, seed=7, now=NOW) == events
    other = demo.generate(users=120, days=21, seed=8, now=NOW)
    assert {e["event_id"] for e in other}.isdisjoint(e["event_id"] for e in events)
    assert len({e["event_id"] for e in events}) == len(events)
    # Later the same day: the same events, plus those that have happened since.
    later = demo.generate(users=120, days=21, seed=7, now=NOW + timedelta(hours=2))
    later_ids = {e["event_id"] for e in later}
    assert {e["event_id"] for e in events} < later_ids


def test_the_traffic_covers_what_the_reports_show(events: list[dict[str, Any]]) -> None:
    times = [datetime.fromisoformat(e["timestamp"]) for e in events]
    first_day = NOW.date() - timedelta(days=20)
    assert max(times) <= NOW and first_day <= min(times).date() <= first_day + timedelta(days=3)
    assert max(times) > NOW - timedelta(hours=1)  # today's traffic runs up to now
    assert Counter(e["event_type"] for e in events).keys() == {
        "chat_interaction", "thread_lifecycle", "feature_usage", "survey_response",
        "feedback_submission", "performance_metric", "error_tracking",
    }  # fmt: skip
    signups: dict[str, datetime] = {}
    for e in events:
        signups.setdefault(e["context"]["user_id"], datetime.fromisoformat(e["timestamp"]))
    weeks = Counter(d.isocalendar()[1] for d in signups.values())
    assert len(weeks) >= 3  # weekly cohorts
    prompts = [
        e["properties"] for e in events if e["properties"].get("message_type") == "user_prompt"
    ]
    texts = [p["prompt_text"] for p in prompts]
    assert len(set(texts)) > len(texts) / 4  # varied...
    assert Counter(texts).most_common(1)[0][1] >= 5  # ...with questions many people ask
    categories = {c for c, _ in default_classifier().predict(sorted(set(texts)))}
    assert categories == set(CATEGORIES)
    assert any(complexity(t) >= 0.6 for t in texts)  # the value funnel's "complex query"
    assert 0.2 < sum(p["is_follow_up"] for p in prompts) / len(prompts) < 0.6
    assert len({p["model_used"] for p in prompts}) >= 5
    actions = Counter(e["properties"].get("action") for e in events)
    assert actions["completed"] and actions["abandoned"] and actions["savings_identified"]
    kinds = Counter(e["properties"].get("feedback_type") for e in events)
    assert kinds["nps"] and kinds["csat"] and kinds["feature_request"] + kinds["bug_report"]
    assert any(e["properties"].get("ai_spend_last_month") for e in events)
    loads = [e["properties"]["duration_ms"] for e in events
             if e["properties"].get("metric_type") == "page_load"]  # fmt: skip
    assert max(loads) > 3000  # slow page loads
    pages = {e["context"]["page_path"] for e in events}
    assert len(pages) >= 6  # page moves for the Sankey
    steps = [s["match"] for f in load_funnels(None).values() for s in f if "match" in s]
    for match in steps:  # every funnel step is reachable
        assert any(_matches(e, match) for e in events), match


def _matches(event: dict[str, Any], match: dict[str, str]) -> bool:
    props = event["properties"]
    columns = {"event_type": event["event_type"], "page_path": event["context"]["page_path"],
               "event_action": props.get("action", ""),
               "event_label": props.get("feature_name", ""),
               "event_category": "interaction" if event["event_type"] in (
                   "chat_interaction", "thread_lifecycle", "feature_usage") else "other"}  # fmt: skip
    return all(columns[k] == v for k, v in match.items())


def test_the_progress_bar_and_a_service_that_keeps_refusing() -> None:
    replies = iter([(503, {"retry-after": "0"}, b"{}"), (202, {}, b'{"accepted":1,"rejected":[]}')])
    calls: list[bytes] = []

    def post(url: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        calls.append(body)
        return next(
            replies,
            (
                202,
                {},
                orjson.dumps({"accepted": len(orjson.loads(body)["events"]), "rejected": []}),
            ),
        )

    stream = io.StringIO()
    summary = demo.run("http://x", users=3, days=2, seed=1, now=NOW, progress=stream, post=post)
    assert summary.retries == 1 and calls[0] == calls[1]  # the same batch again
    assert "100%" in stream.getvalue() and "3/3 people" in stream.getvalue()

    with pytest.raises(demo.DemoError, match="answered 400"):
        demo.run("http://x", users=3, days=2, now=NOW, progress=None,
                 post=lambda url, body: (400, {}, b'{"error":"BadRequest"}'))  # fmt: skip


@pytest.mark.slow
def test_demo_on_a_real_service_matches_the_generated_events(tmp_path: Path) -> None:
    users, days, seed = 60, 10, 3
    now = datetime.now(UTC)
    # No report cache: the reports are read while the prompt worker catches up.
    env = {"EVENT_FLUSH_INTERVAL_MS": "100", "ANALYTICS_REPORT_CACHE_SECONDS": "0"}
    service = ServiceProcess(tmp_path / "data", env=env)
    service.start()
    try:
        headers = service.admin_headers()
        key = headers["authorization"].removeprefix("Bearer ")
        # 7 days: some of it has happened at any time of day (1 day had nothing to send in the
        # first hour of the UTC day, so no request to refuse).
        with pytest.raises(demo.DemoError, match=r"(?s)answered 401.*admin-only"):
            demo.run(service.url, users=2, days=7, seed=seed, now=now, progress=None)
        summary = demo.run(service.url, users=users, days=days, seed=seed, now=now,
                           progress=None, api_key=key)  # fmt: skip
        events = demo.generate(users=users, days=days, seed=seed, now=now)
        assert (summary.events, summary.accepted, summary.rejected) == (len(events), len(events), 0)
        assert demo.wait_stored(service.url, 60) is not None
        expected = _headlines(events, now)
        wait_until(
            lambda: _spend(service.url, headers, now, days) >= expected["spend"] - 1e-3, 90, 1.0
        )
        _check_headlines(service.url, headers, now, days, expected)

        # Again through the command, with the key from NETRA_API_KEY: nothing stored twice, only
        # what has "happened" since (unless the UTC day turned: then the timeline moves).
        again = subprocess.run(
            [str(CLI), "demo", "--url", service.url, "--users", str(users), "--days", str(days),
             "--seed", str(seed)],
            capture_output=True, text=True, timeout=300, env={**os.environ, "NETRA_API_KEY": key},
        )  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert ", 0 rejected" in again.stdout and "stored in ClickHouse" in again.stdout
        writer = service.ready()["checks"]["writer"]
        if datetime.now(UTC).date() == now.date():
            later = demo.generate(users=users, days=days, seed=seed, now=datetime.now(UTC))
            assert len(events) <= writer["events_written"] <= len(later)
            assert writer["duplicates_skipped"] == len(events)
    finally:
        service.stop()


def test_the_cli_names_a_service_it_cannot_reach() -> None:
    result = subprocess.run(
        [str(CLI), "demo", "--url", "http://127.0.0.1:9", "--users", "2", "--days", "7",
         "--timeout", "2"],  # 7 days: events to send at any time of day (see above)
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "cannot reach http://127.0.0.1:9/api/analytics/import" in result.stderr
    refused = subprocess.run([str(CLI), "demo", "--url", "x", "--days", "91"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 2 and "retention" in refused.stderr


def _headlines(events: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The headline numbers, counted in Python over the generated events."""
    users_by_day: dict[date, set[str]] = defaultdict(set)
    chats_by_day: Counter[date] = Counter()
    nps: list[int] = []
    spend = 0.0
    prompts = follow_ups = 0
    waiting: dict[str, dict[str, Any]] = {}  # thread -> its prompt still without an answer
    for e in events:
        day = datetime.fromisoformat(e["timestamp"]).date()
        users_by_day[day].add(e["context"]["user_id"])
        props = e["properties"]
        if e["event_type"] == "chat_interaction":
            chats_by_day[day] += 1
            if props["message_type"] == "user_prompt":
                prompts += 1
                follow_ups += props["is_follow_up"]
                waiting[props["thread_id"]] = props
            else:  # the cost the app was billed for the answer
                spend += props["cost_cents"]
                del waiting[props["thread_id"]]
        if props.get("feedback_type") == "nps":
            nps.append(props["score"])
    for prompt in waiting.values():  # unanswered: the report estimates the prompt's input cost
        dollars_per_million_input = demo.MODELS[prompt["model_used"]][1]
        spend += prompt["input_tokens"] * dollars_per_million_input / 1_000_000 * 100
    promoters = sum(s >= 9 for s in nps)
    detractors = sum(s <= 6 for s in nps)
    return {
        "active_users": {d.isoformat(): len(u) for d, u in users_by_day.items()},
        "chats": {d.isoformat(): n for d, n in chats_by_day.items()},
        "nps": 100 * (promoters - detractors) / len(nps),
        "spend": spend,
        "follow_up_rate": follow_ups / prompts,
    }


def _get(url: str, headers: dict[str, str], path: str) -> Any:
    reply = httpx.get(f"{url}/api/analytics/reports/{path}", headers=headers, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _range(now: datetime, days: int) -> str:
    end = now.date()
    return f"start_date={end - timedelta(days=days - 1)}&end_date={end}"


def _spend(url: str, headers: dict[str, str], now: datetime, days: int) -> float:
    return float(_get(url, headers, f"ai-spend?{_range(now, days)}")["total_spend_cents"])


def _check_headlines(
    url: str, headers: dict[str, str], now: datetime, days: int, expected: dict[str, Any]
) -> None:
    activity = _get(url, headers, f"user-activity?{_range(now, days)}&granularity=day")["periods"]
    assert {p["period"]: p["active_users"] for p in activity if p["active_users"]} == expected[
        "active_users"
    ]
    assert {p["period"]: p["chat_interactions"] for p in activity if p["chat_interactions"]} == (
        expected["chats"]
    )
    feedback = _get(url, headers, f"feedback?{_range(now, days)}")
    assert feedback["nps"] == pytest.approx(expected["nps"])
    assert _spend(url, headers, now, days) == pytest.approx(
        expected["spend"], rel=1e-6
    )  # Float32 columns
    prompts = _get(url, headers, "prompts?time_range=30d")
    assert prompts["follow_up_rate"] == pytest.approx(expected["follow_up_rate"])
