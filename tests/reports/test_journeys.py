"""journeys: funnels, cohort retention and paths against an independent walk over generated
sessions spread over three weeks (the service's clock moves with them)."""

from __future__ import annotations

import itertools
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from netra_analytics.prompts.complexity import complexity
from netra_analytics.reports.funnel_walks import build, stored_walks
from netra_analytics.reports.funnels import funnels_query, load_funnels
from netra_analytics.reports.journeys import funnel_steps
from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import body, event, people
from tests.support.processes import wait_until

FIRST = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
SIMPLE = "What is a token?"
COMPLEX = ("Compare GPT-4o and Claude 3.5 Sonnet for code review under a budget of 2000 dollars per month; we need "
           "p95 latency below 2 s and must keep accuracy above 90%. Also, should we fine-tune a smaller model instead? "
           "Then plan the migration of our RAG pipeline, including embeddings and the vector index.")  # fmt: skip
PAGES = ["/home", "/chat", "/costs", "/settings"]


class Clock:
    def __init__(self) -> None:
        self.now = FIRST.timestamp()

    def __call__(self) -> float:
        return self.now


def _first_at_or_after(times: list[datetime], moment: datetime) -> datetime | None:
    later = [t for t in sorted(times) if t >= moment]
    return later[0] if later else None


def _walk(steps: list[dict[str, list[datetime]]]) -> list[tuple[int, float | None]]:
    reached = [0] * len(steps)
    waits: list[list[float]] = [[] for _ in steps]
    for user, times in steps[0].items():
        moment = min(times)
        reached[0] += 1
        for k in range(1, len(steps)):
            nxt = _first_at_or_after(steps[k].get(user, []), moment)
            if nxt is None:
                break
            waits[k].append((nxt - moment).total_seconds())
            moment = nxt
            reached[k] += 1
    return [
        (reached[k], statistics.median(waits[k]) if waits[k] else None) for k in range(len(steps))
    ]


def test_journeys(make_client: Callable[..., TestClient], store: ChdbStore) -> None:
    assert complexity(COMPLEX) >= 0.6 > complexity(SIMPLE)
    clock = Clock()
    client = make_client(clock=clock, event_batch_size=1, event_flush_interval_ms=10)
    rng = random.Random(23)
    log: list[dict[str, Any]] = []  # what was sent, flattened
    prompts = 0
    for u in range(10):
        user = f"j{u}"
        start_day = rng.randrange(10)
        for s, day in enumerate(
            sorted({start_day + rng.randrange(0, 11) for _ in range(rng.randint(1, 5))})
        ):
            session = f"{user}-s{s}"
            moment = FIRST + timedelta(
                days=day, hours=rng.randrange(8, 20), minutes=rng.randrange(60)
            )
            for _ in range(rng.randint(1, 4)):  # page views within the session
                page = rng.choice(PAGES)
                kind = rng.choice(["chat", "feature", "savings", "perf", "thread"])
                if kind == "chat":
                    text = rng.choice([SIMPLE, COMPLEX])
                    e = event("chat_interaction", prompt_text=text, prompt_length=len(text), thread_id=f"{session}-t",
                              message_type="user_prompt", response_time_ms=None, tokens_consumed=None)  # fmt: skip
                    prompts += 1
                elif kind == "feature":
                    e = event(
                        "feature_usage",
                        feature_name=rng.choice(["exports", "cost_explorer"]),
                        action="open",
                    )
                elif kind == "savings":
                    e = event(
                        "feature_usage", feature_name="cost_explorer", action="savings_identified"
                    )
                elif kind == "thread":
                    e = event("thread_lifecycle", thread_id=f"{session}-t", action="created")
                else:
                    e = event("performance_metric")
                moment += timedelta(seconds=rng.randint(5, 300))
                e["timestamp"] = moment.isoformat()
                clock.now = moment.timestamp() + 1
                # Signed out now and then, on a browser users 0 and 7, 1 and 8, 2 and 9 share:
                # those page views are the person's who signed in on the browser first.
                signed_in = rng.random() < 0.75
                browser = f"b{u % 7}"
                payload = body([e], user_id=user if signed_in else "", page_path=page,
                               anonymous_id=browser, session_id=session)  # fmt: skip
                reply = client.post(
                    "/api/analytics/events",
                    content=orjson.dumps(payload),
                    headers={"content-type": "application/json"},
                )
                assert reply.json()["accepted"] == 1
                props = e["properties"]
                log.append({"user": user if signed_in else None, "browser": browser, "session": session, "page": page,
                            "at": moment, "type": e["event_type"], "props": props})  # fmt: skip
    wait_until(
        lambda: (
            store.query_rows("SELECT count() AS n FROM analytics.frontend_events")[0]["n"]
            == len(log)
        ),
        timeout=30,
    )
    wait_until(
        lambda: (
            store.query_rows("SELECT count() AS n FROM analytics.prompt_analytics FINAL")[0]["n"]
            == prompts
        ),
        timeout=30,
    )
    clock.now = datetime.now(UTC).timestamp()
    person = people((item["user"], item["browser"], item["at"]) for item in log)
    stored_ids = {item["user"] or item["browser"] for item in log}
    for item in log:
        item["user"] = person(item["user"], item["browser"])
    assert len({item["user"] for item in log}) < len(stored_ids)  # it matters

    def times(predicate: Callable[[dict[str, Any]], bool]) -> dict[str, list[datetime]]:
        out: dict[str, list[datetime]] = defaultdict(list)
        for item in log:
            if predicate(item):
                out[item["user"]].append(item["at"])
        return dict(out)

    days: dict[str, list[Any]] = defaultdict(list)
    for item in sorted(log, key=lambda i: i["at"]):
        if item["at"].date() not in days[item["user"]]:
            days[item["user"]].append(item["at"].date())
    third_day = {
        u: [min(i["at"] for i in log if i["user"] == u and i["at"].date() == d[2])]
        for u, d in days.items()
        if len(d) >= 3
    }
    onboarding = _walk([
        times(lambda i: True),
        times(lambda i: i["type"] == "chat_interaction"),
        times(lambda i: i["type"] == "feature_usage"),
        third_day,
    ])  # fmt: skip
    value = _walk([
        times(lambda i: i["type"] in ("chat_interaction", "feature_usage", "thread_lifecycle")),
        times(lambda i: i["type"] == "chat_interaction" and complexity(i["props"]["prompt_text"]) >= 0.6),
        times(lambda i: i["type"] == "feature_usage" and i["props"]["feature_name"] == "cost_explorer"
              and i["props"]["action"] == "savings_identified"),
    ])  # fmt: skip

    last_day = (FIRST + timedelta(days=21)).date()
    report = client.get(
        "/api/analytics/reports/journeys",
        params={"start_date": FIRST.date().isoformat(), "end_date": last_day.isoformat()},
    ).json()
    for name, expected in (("onboarding", onboarding), ("value_realisation", value)):
        got = report["funnels"][name]
        assert [(s["users"], s["median_seconds_from_previous"]) for s in got] == [
            (users, pytest.approx(wait) if wait is not None else None) for users, wait in expected
        ], name
        assert got[0]["conversion_from_start"] == 1.0
    assert report["funnels"]["onboarding"][-1]["users"] > 0  # the data does exercise the last step
    # The same from walks computed ahead up to day 10 (the rest walked on from the events);
    # another `paths` so that the report cache does not answer.
    build(store, load_funnels(None), FIRST.date() + timedelta(days=10), days=11)
    assert stored_walks(store, load_funnels(None), FIRST.date(), last_day) is not None
    ahead = client.get(
        "/api/analytics/reports/journeys",
        params={"start_date": FIRST.date().isoformat(), "end_date": last_day.isoformat(),
                "paths": 49},
    ).json()  # fmt: skip
    assert ahead["funnels"] == report["funnels"]

    first_week: dict[str, Any] = {}
    active: dict[tuple[Any, Any], set[str]] = defaultdict(set)
    for item in log:
        monday = item["at"].date() - timedelta(days=item["at"].weekday())
        first_week[item["user"]] = min(first_week.get(item["user"], monday), monday)
    for item in log:
        monday = item["at"].date() - timedelta(days=item["at"].weekday())
        active[(first_week[item["user"]], monday)].add(item["user"])
    for row in report["cohorts"]:
        cohort = datetime.fromisoformat(row["cohort"]).date()
        size = len(active[(cohort, cohort)])
        assert row["users"] == size
        for k, share in enumerate(row["retention"]):
            assert share == pytest.approx(
                len(active[(cohort, cohort + timedelta(days=7 * k))]) / size
            )
    assert {row["cohort"] for row in report["cohorts"]} == {
        w.isoformat() for w in first_week.values()
    }

    moves: Counter[tuple[str, str]] = Counter()
    by_session: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in log:
        by_session[item["session"]].append(item)
    for items in by_session.values():
        pages = [i["page"] for i in sorted(items, key=lambda i: i["at"])]
        moves.update((a, b) for a, b in itertools.pairwise(pages) if a != b)
    assert {(p["from"], p["to"]): p["moves"] for p in report["paths"]} == dict(moves)

    assert (
        client.get(
            "/api/analytics/reports/journeys",
            params={"start_date": "2026-11-02", "end_date": "2026-11-03", "funnel": "nope"},
        ).status_code
        == 422
    )
    only = client.get(
        "/api/analytics/reports/journeys",
        params={"start_date": "2026-11-02", "end_date": "2026-11-23", "funnel": "onboarding"},
    ).json()
    assert list(only["funnels"]) == ["onboarding"]


def test_a_median_of_an_even_count_is_the_mean_of_the_middle_two(store: ChdbStore) -> None:
    """The funnels' median waits are computed in ClickHouse; with four users the median of
    their waits is the mean of the second and third, as statistics.median takes it."""
    start = datetime(2026, 11, 3, 9, tzinfo=UTC)
    waits = [10, 40, 100, 1000]  # seconds from the first event to the first chat
    rows = []
    for n, wait in enumerate(waits):
        for kind, at in (
            ("feature_usage", start),
            ("chat_interaction", start + timedelta(seconds=wait)),
        ):
            rows.append(orjson.dumps({"user_id": f"m{n}", "session_id": f"m{n}", "event_type": kind,
                                      "timestamp": at.strftime("%Y-%m-%d %H:%M:%S"),
                                      "properties": "{}"}))  # fmt: skip
    store.insert_json_rows("frontend_events", b"\n".join(rows))
    steps = [{"name": "first event", "match": {}},
             {"name": "first chat", "match": {"event_type": "chat_interaction"}}]  # fmt: skip
    text, params = funnels_query({"f": steps}, date(2026, 11, 3), date(2026, 11, 3))
    [row] = store.query_rows(text, params)
    walked = funnel_steps(["first event", "first chat"], row, "f0")
    assert walked[1]["users"] == 4
    assert walked[1]["median_seconds_from_previous"] == statistics.median(waits) == 70
    assert walked[0]["median_seconds_from_previous"] is None


def _events(store: ChdbStore, user: str, items: list[tuple[str, datetime]]) -> None:
    rows = [orjson.dumps({"user_id": user, "session_id": user, "event_type": kind,
                          "timestamp": at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], "properties": "{}"})
            for kind, at in items]  # fmt: skip
    store.insert_json_rows("frontend_events", b"\n".join(rows))


def _walked(store: ChdbStore, steps: list[dict[str, Any]], day: date, last: date) -> list[int]:
    text, params = funnels_query({"f": steps}, day, last)
    [row] = store.query_rows(text, params)
    return [s["users"] for s in funnel_steps([s["name"] for s in steps], row, "f0")]


def test_a_step_is_found_after_any_number_of_earlier_matches(store: ChdbStore) -> None:
    """No cap on the events kept per user: the chat that follows 1,500 earlier chats and then
    a feature is the one the third step finds."""
    start = datetime(2026, 11, 3, 8, tzinfo=UTC)
    items = [("chat_interaction", start + timedelta(seconds=n)) for n in range(1500)]
    items += [("feature_usage", start + timedelta(hours=2)),
              ("chat_interaction", start + timedelta(hours=3))]  # fmt: skip
    _events(store, "flood", items)
    steps: list[dict[str, Any]] = [
        {"name": "first", "match": {}},
        {"name": "feature", "match": {"event_type": "feature_usage"}},
        {"name": "chat after it", "match": {"event_type": "chat_interaction"}},
    ]
    assert _walked(store, steps, date(2026, 11, 3), date(2026, 11, 3)) == [1, 1, 1]


def test_steps_after_active_days_and_two_complexity_thresholds(store: ChdbStore) -> None:
    """An "active on N days" step is reached at the first event of the Nth active day when
    that is at or after the previous step, and the steps after it go on from there; two
    complexity thresholds are two conditions. Three users, walked by hand:
    a: events on 3 days, a 0.9 prompt on day 1 → all steps (the feature on day 3 is after
       the third day's first event);
    b: the same days, but the feature is only on day 2 (before the third day) → stops after
       "active on 3 days";
    c: only a 0.5 prompt → reaches "some complexity" but not "high complexity"."""
    day = datetime(2026, 11, 2, tzinfo=UTC)
    at = [day + timedelta(days=d, hours=9) for d in range(3)]
    _events(store, "a", [("page_view", at[0]), ("page_view", at[1]), ("page_view", at[2]),
                         ("feature_usage", at[2] + timedelta(minutes=5))])  # fmt: skip
    _events(store, "b", [("page_view", at[0]), ("feature_usage", at[1]), ("page_view", at[2])])
    _events(store, "c", [("page_view", at[0])])
    prompts = [("a", at[0] + timedelta(minutes=1), 0.9), ("b", at[0] + timedelta(minutes=1), 0.9),
               ("c", at[0] + timedelta(minutes=1), 0.5)]  # fmt: skip
    store.insert_json_rows("prompt_analytics", b"\n".join(
        orjson.dumps({"user_id": u, "timestamp": t.strftime("%Y-%m-%d %H:%M:%S"),
                      "prompt_complexity_score": c, "version": 1})
        for u, t, c in prompts))  # fmt: skip
    some: list[dict[str, Any]] = [
        {"name": "first", "match": {}},
        {"name": "some complexity", "prompt_complexity_at_least": 0.4},
        {"name": "high complexity", "prompt_complexity_at_least": 0.8},
    ]
    assert _walked(store, some, day.date(), at[2].date()) == [3, 3, 2]
    regular: list[dict[str, Any]] = [
        {"name": "first", "match": {}},
        {"name": "active on 3 days", "active_days": 3},
        {"name": "feature after", "match": {"event_type": "feature_usage"}},
    ]
    assert _walked(store, regular, day.date(), at[2].date()) == [3, 2, 1]
    # The range decides which days count: from the second day on, nobody has three.
    assert _walked(store, regular, at[1].date(), at[2].date()) == [2, 0, 0]


def test_at_most_nineteen_distinct_conditions() -> None:
    steps = [{"name": f"s{n}", "match": {"event_label": f"l{n}"}} for n in range(20)]
    with pytest.raises(ValueError, match="more than 19 step conditions"):
        funnels_query({"f": steps}, date(2026, 11, 3), date(2026, 11, 3))
    funnels_query({"f": steps[:19]}, date(2026, 11, 3), date(2026, 11, 3))


def test_an_edited_funnels_file_applies_and_a_broken_one_is_a_503(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    path = tmp_path / "funnels.json"
    path.write_text(orjson.dumps({"funnels": {"only": [{"name": "any", "match": {}}]}}).decode())
    client = make_client(funnels_file=path)
    params = {"start_date": "2026-11-02", "end_date": "2026-11-03"}
    assert list(client.get("/api/analytics/reports/journeys", params=params).json()["funnels"]) == [
        "only"
    ]
    path.write_text(orjson.dumps({"funnels": {"other": [{"name": "any", "match": {}}]}}).decode())
    assert list(client.get("/api/analytics/reports/journeys", params=params).json()["funnels"]) == [
        "other"
    ]
    path.write_text("{not json")
    for report in ("journeys", "ai-spend"):
        reply = client.get(f"/api/analytics/reports/{report}", params=params)
        assert reply.status_code == 503
        assert "ANALYTICS_FUNNELS" in reply.json()["detail"]
