"""user-activity and feedback against an independent computation over generated data.

Events are sent through the API with the service's clock moved along with them, over
2026-10-28 .. 2026-11-04: a month boundary, and the end of US daylight saving time (1 Nov).
"""

from __future__ import annotations

import functools
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from fastapi.testclient import TestClient

from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import body, event, people, random_event
from tests.support.processes import wait_until

FIRST = datetime(2026, 10, 28, tzinfo=UTC)
DAYS = 8


class Clock:
    def __init__(self) -> None:
        self.now = FIRST.timestamp()

    def __call__(self) -> float:
        return self.now


def _send(
    client: TestClient, clock: Clock, events: list[dict[str, Any]], user: str, browser: str = ""
) -> None:
    latest = max(datetime.fromisoformat(e["timestamp"]) for e in events)
    clock.now = latest.timestamp() + 30  # received half a minute after the last one happened
    payload = body(events, user_id=user, anonymous_id=browser, session_id=f"s-{user}{browser}")
    reply = client.post("/api/analytics/events", content=orjson.dumps(payload),
                        headers={"content-type": "application/json"})  # fmt: skip
    assert reply.status_code == 202 and reply.json()["accepted"] == len(events), reply.text


@pytest.fixture
def dataset(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> tuple[TestClient, list[tuple[str, dict[str, Any]]]]:
    clock = Clock()
    client = make_client(clock=clock, event_batch_size=200, event_flush_interval_ms=20)
    rng = random.Random(5)
    # Each request from one of five browsers, signed in (as one of seven users) or not: a
    # signed-out visit counts for whoever signed in on that browser first (tests.factories.people).
    sends: list[tuple[str | None, str, dict[str, Any]]] = []
    for day in range(DAYS):
        for hour in sorted(rng.sample(range(24), 6)):
            user = f"u{rng.randrange(7)}" if rng.random() < 0.7 else None
            browser = f"b{rng.randrange(5)}"
            start = FIRST + timedelta(days=day, hours=hour, minutes=rng.randrange(50))
            events = [
                random_event(rng, start + timedelta(seconds=7 * i))
                for i in range(rng.randint(1, 12))
            ]
            _send(client, clock, events, user or "", browser)
            sends += [(user, browser, e) for e in events]
    person = people((u, b, datetime.fromisoformat(e["timestamp"])) for u, b, e in sends)
    sent = [(person(u, b), e) for u, b, e in sends]
    assert len({who for who, _ in sent}) < len({u or b for u, b, _ in sends})  # it matters
    for utc_hour in (5, 6):  # 01:30 in New York twice on 1 Nov: daylight time, then standard
        events = [event("feature_usage")]
        events[0]["timestamp"] = datetime(2026, 11, 1, utc_hour, 30, tzinfo=UTC).isoformat()
        _send(client, clock, events, "u-dst")
        sent += [("u-dst", events[0])]
    wait_until(
        lambda: (
            store.query_rows("SELECT count() AS n FROM analytics.frontend_events")[0]["n"]
            == len(sent)
        ),
        timeout=30,
    )
    clock.now = datetime.now(UTC).timestamp()
    return client, sent


def _expected(
    sent: list[tuple[str, dict[str, Any]]],
    period_of: Callable[[datetime], str],
    user: str | None = None,
) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = defaultdict(lambda: {"total_events": 0, "chat_interactions": 0, "threads_created": 0,
                                                            "feature_interactions": 0, "tokens_consumed": 0.0, "rt": [], "users": set()})  # fmt: skip
    for who, e in sent:
        if user is not None and who != user:
            continue
        g = groups[period_of(datetime.fromisoformat(e["timestamp"]))]
        props = e["properties"]
        g["total_events"] += 1
        g["users"].add(who)
        if e["event_type"] == "chat_interaction":
            g["chat_interactions"] += 1
            g["tokens_consumed"] += props.get("tokens_consumed", 0)
        g["threads_created"] += (
            e["event_type"] == "thread_lifecycle" and props["action"] == "created"
        )
        g["feature_interactions"] += e["event_type"] == "feature_usage"
        if e["event_type"] == "performance_metric":
            g["rt"].append(props["duration_ms"])
    return groups


def _check(
    report: dict[str, Any], expected: dict[str, dict[str, Any]], all_periods: list[str]
) -> None:
    assert [p["period"] for p in report["periods"]] == all_periods
    for p in report["periods"]:
        e = expected.get(p["period"])
        if e is None:
            assert (p["total_events"], p["active_users"], p["avg_response_time_ms"]) == (
                0,
                0,
                None,
            ), p
            continue
        for key in ("total_events", "chat_interactions", "threads_created", "feature_interactions"):
            assert p[key] == e[key], (p["period"], key)
        assert p["tokens_consumed"] == pytest.approx(e["tokens_consumed"])
        assert p["active_users"] == len(e["users"])
        if e["rt"]:
            assert p["avg_response_time_ms"] == pytest.approx(sum(e["rt"]) / len(e["rt"]))
        else:
            assert p["avg_response_time_ms"] is None


def _get(client: TestClient, **params: Any) -> Any:
    return client.get("/api/analytics/reports/user-activity", params=params)


def test_daily_weekly_monthly_in_utc_from_the_rollup(dataset: tuple[TestClient, Any]) -> None:
    client, sent = dataset
    days = [(FIRST + timedelta(days=d)).date().isoformat() for d in range(DAYS)]
    daily = _get(client, start_date=days[0], end_date=days[-1]).json()
    assert daily["source"] == "activity_rollup"
    _check(daily, _expected(sent, lambda t: t.astimezone(UTC).date().isoformat()), days)
    weekly = _get(client, start_date=days[0], end_date=days[-1], granularity="week").json()

    def monday(t: datetime) -> str:
        day = t.astimezone(UTC).date()
        return (day - timedelta(days=day.weekday())).isoformat()

    _check(weekly, _expected(sent, monday), ["2026-10-26", "2026-11-02"])
    monthly = _get(client, start_date=days[0], end_date=days[-1], granularity="month").json()
    _check(
        monthly,
        _expected(sent, lambda t: t.astimezone(UTC).date().replace(day=1).isoformat()),
        ["2026-10-01", "2026-11-01"],
    )


def test_hourly_across_the_dst_change_in_new_york(dataset: tuple[TestClient, Any]) -> None:
    client, sent = dataset
    tz = ZoneInfo("America/New_York")
    report = _get(
        client,
        start_date="2026-10-31",
        end_date="2026-11-01",
        granularity="hour",
        tz="America/New_York",
    ).json()
    assert report["source"] == "activity_rollup"
    hours = [p["period"] for p in report["periods"]]
    assert len(hours) == 49  # 24 + 25: 1 Nov has two 01:00 hours, kept apart by their offsets
    assert hours[24:28] == [
        "2026-11-01T00:00-0400",
        "2026-11-01T01:00-0400",
        "2026-11-01T01:00-0500",
        "2026-11-01T02:00-0500",
    ]
    in_range = [
        (u, e)
        for u, e in sent
        if date(2026, 10, 31)
        <= datetime.fromisoformat(e["timestamp"]).astimezone(tz).date()
        <= date(2026, 11, 1)
    ]
    _check(
        report, _expected(in_range, lambda t: t.astimezone(tz).strftime("%Y-%m-%dT%H:00%z")), hours
    )


@pytest.mark.parametrize("name", ["Asia/Tokyo", "Asia/Kolkata", "Asia/Kathmandu"])
def test_daily_and_hourly_in_other_time_zones(dataset: tuple[TestClient, Any], name: str) -> None:
    """Whole-hour, half-hour (+05:30) and quarter-hour (+05:45) offsets: the rollup's quarter
    hours fall inside one local hour and day in each."""
    client, sent = dataset
    tz = ZoneInfo(name)
    days = [(date(2026, 10, 29) + timedelta(days=d)).isoformat() for d in range(5)]
    report = _get(client, start_date=days[0], end_date=days[-1], tz=name).json()
    assert report["source"] == "activity_rollup"
    _check(report, _expected(sent, lambda t: t.astimezone(tz).date().isoformat()), days)
    hourly = _get(client, start_date=days[1], end_date=days[1], tz=name, granularity="hour")
    in_day = [(u, e) for u, e in sent if _local_day(e, tz) == days[1]]
    hours = [p["period"] for p in hourly.json()["periods"]]
    assert len(hours) == 24
    _check(
        hourly.json(),
        _expected(in_day, lambda t: t.astimezone(tz).strftime("%Y-%m-%dT%H:00%z")),
        hours,
    )


def _label(t: datetime, tz: ZoneInfo, pattern: str) -> str:
    return t.astimezone(tz).strftime(pattern)


def _local_day(event: dict[str, Any], tz: ZoneInfo) -> str:
    return datetime.fromisoformat(event["timestamp"]).astimezone(tz).date().isoformat()


def test_one_user_and_an_empty_range(dataset: tuple[TestClient, Any]) -> None:
    client, sent = dataset
    days = [(FIRST + timedelta(days=d)).date().isoformat() for d in range(DAYS)]
    mine = _get(client, start_date=days[0], end_date=days[-1], user_id="u3").json()
    assert mine["source"] == "user_analytics_summary"
    _check(mine, _expected(sent, lambda t: t.astimezone(UTC).date().isoformat(), user="u3"), days)
    for params in ({"tz": "America/New_York"}, {"granularity": "hour"}):
        theirs = _get(client, start_date=days[0], end_date=days[2], user_id="u3", **params).json()
        assert theirs["source"] == "frontend_events"
        tz = ZoneInfo(params.get("tz", "UTC"))
        pattern = "%Y-%m-%dT%H:00%z" if "granularity" in params else "%Y-%m-%d"
        label = functools.partial(_label, tz=tz, pattern=pattern)
        in_range = [(u, e) for u, e in sent if days[0] <= _local_day(e, tz) <= days[2]]
        _check(
            theirs,
            _expected(in_range, label, user="u3"),
            [p["period"] for p in theirs["periods"]],
        )
    empty = _get(client, start_date="2025-01-01", end_date="2025-01-03").json()
    assert [p["total_events"] for p in empty["periods"]] == [0, 0, 0]


@pytest.mark.parametrize(
    ("params", "bad"),
    [
        ({"end_date": "2026-11-01"}, "start_date"),
        ({"start_date": "2026-11-02", "end_date": "2026-11-01"}, "end_date"),
        ({"start_date": "2026-11-01", "end_date": "2026-11-01", "tz": "Mars/Olympus"}, "tz"),
        ({"start_date": "2026-01-01", "end_date": "2026-12-31", "granularity": "hour"}, "end_date"),
        (
            {"start_date": "2026-11-01", "end_date": "2026-11-01", "granularity": "fortnight"},
            "granularity",
        ),
        ({"start_date": "yesterday", "end_date": "2026-11-01"}, "start_date"),
    ],
)
def test_bad_parameters_are_422_naming_them(
    client: TestClient, params: dict[str, str], bad: str
) -> None:
    reply = _get(client, **params)
    assert reply.status_code == 422
    assert any(bad in error["loc"] for error in reply.json()["detail"])


def test_long_ranges_are_cached_briefly_and_say_so(dataset: tuple[TestClient, Any]) -> None:
    client, _ = dataset
    first = _get(client, start_date="2026-10-01", end_date="2026-11-20")
    again = _get(client, start_date="2026-10-01", end_date="2026-11-20")
    assert (
        first.headers["cache-control"] == "private, max-age=60"
        and first.headers["x-cache"] == "miss"
    )
    assert again.headers["x-cache"] == "hit" and again.json() == first.json()
    short = _get(client, start_date="2026-11-01", end_date="2026-11-02")
    assert short.headers["cache-control"] == "no-store"


def test_feedback_report(make_client: Callable[..., TestClient], store: ChdbStore) -> None:
    client = make_client(event_batch_size=1, event_flush_interval_ms=10)
    nps = [10, 9, 9, 8, 7, 6, 3, 0, 10]
    csat = [5, 4, 3, 1, 5]
    events = [event("feedback_submission", feedback_type="nps", score=s) for s in nps]
    events += [event("feedback_submission", feedback_type="csat", score=s) for s in csat]
    events += [event("feedback_submission", feedback_type="feature_request", score=None)] * 0
    events += [
        event("feedback_submission", feedback_type="feature_request", score=None) for _ in range(3)
    ]
    events += [
        event("feedback_submission", feedback_type="bug_report", score=None) for _ in range(2)
    ]
    scales = {"spending": [7, 7, 9], "planning": [2, 10]}
    for kind, values in scales.items():
        events += [
            event(
                "survey_response",
                question_type=kind,
                response_scale=v,
                ai_spend_last_month=100.0 * v,
            )
            for v in values
        ]
    client.post(
        "/api/analytics/events",
        content=orjson.dumps(body(events)),
        headers={"content-type": "application/json"},
    )
    wait_until(
        lambda: (
            store.query_rows("SELECT count() AS n FROM analytics.frontend_events")[0]["n"]
            == len(events)
        ),
        timeout=20,
    )
    today = datetime.now(UTC).date().isoformat()
    report = client.get(
        "/api/analytics/reports/feedback", params={"start_date": today, "end_date": today}
    ).json()
    promoters, detractors = sum(s >= 9 for s in nps), sum(s <= 6 for s in nps)
    assert report["nps"] == pytest.approx(100 * (promoters - detractors) / len(nps))
    assert (report["promoters"], report["detractors"], report["nps_responses"]) == (
        promoters,
        detractors,
        len(nps),
    )
    assert report["csat_percent"] == pytest.approx(100 * sum(s >= 4 for s in csat) / len(csat))
    assert report["csat_mean"] == pytest.approx(sum(csat) / len(csat))
    assert (report["feature_requests"], report["bug_reports"]) == (3, 2)
    surveys = {s["question_type"]: s for s in report["surveys"]}
    assert (
        surveys["spending"]["responses"] == 3
        and surveys["spending"]["scale_distribution"]["7"] == 2
    )
    assert (
        surveys["spending"]["scale_distribution"]["9"] == 1
        and surveys["spending"]["scale_distribution"]["1"] == 0
    )
    assert surveys["planning"]["scale_mean"] == pytest.approx(6.0)
    assert surveys["spending"]["ai_spend_last_month_mean"] == pytest.approx(100 * (7 + 7 + 9) / 3)
