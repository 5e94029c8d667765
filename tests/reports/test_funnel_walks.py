"""Funnel walks computed ahead (reports/funnel_walks.py): whatever a build holds, and whatever
arrived after it, a report's funnels equal the walk from the events (funnels_query), which
test_journeys checks against an independent walk in Python."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from netra_analytics.reports.funnel_walks import (
    FunnelWalkBuilder,
    Stopped,
    build,
    funnel_totals,
    stored_walks,
)
from netra_analytics.reports.funnels import funnels_query, load_funnels, walk_query
from netra_analytics.store.chdb_backend import ChdbStore
from tests.support.processes import wait_until

FIRST = date(2026, 11, 1)
HORIZON = date(2026, 11, 15)
LAST = date(2026, 11, 20)
FUNNELS = load_funnels(None)  # every kind of step: match, active days, complexity


def _at(day: date, rng: random.Random) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
        seconds=rng.randrange(86_400)
    )


def _event(user: str, at: datetime, rng: random.Random) -> dict[str, Any]:
    kind, action, label = rng.choice([
        ("chat_interaction", "user_prompt", "gpt-4o"),
        ("chat_interaction", "ai_response", "gpt-4o"),
        ("feature_usage", "open", "exports"),
        ("feature_usage", "savings_identified", "cost_explorer"),
        ("thread_lifecycle", "created", ""),
        ("performance_metric", "page_load", "success"),
        ("error_tracking", "medium", "TypeError"),
    ])  # fmt: skip
    category = {"performance_metric": "technical", "error_tracking": "technical"}.get(
        kind, "interaction"
    )
    return {"user_id": user, "session_id": f"{user}-{at.date()}", "event_type": kind,
            "event_category": category, "event_action": action, "event_label": label,
            "timestamp": at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], "properties": "{}"}  # fmt: skip


def _prompt(user: str, at: datetime, complexity: float) -> dict[str, Any]:
    return {"user_id": user, "timestamp": at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            "prompt_complexity_score": complexity, "version": 1}  # fmt: skip


def _insert(store: ChdbStore, table: str, rows: list[dict[str, Any]]) -> None:
    store.insert_json_rows(table, b"\n".join(orjson.dumps(r) for r in rows))


@pytest.fixture
def data(store: ChdbStore) -> ChdbStore:
    """30 users active on random days from Nov 1 to Nov 20, a few events a day, and prompts of
    random complexity (some at the same millisecond as an event, some users without any)."""
    rng = random.Random(7)
    events, prompts = [], []
    for u in range(30):
        user = f"w{u}"
        for day in sorted(rng.sample(range(20), rng.randint(1, 9))):
            for _ in range(rng.randint(1, 4)):
                at = _at(FIRST + timedelta(days=day), rng)
                events.append(_event(user, at, rng))
                if u % 5 and rng.random() < 0.4:
                    prompts.append(_prompt(user, at, rng.choice([0.2, 0.6, 0.9])))
    _insert(store, "frontend_events", events)
    _insert(store, "prompt_analytics", prompts)
    return store


def _from_events(store: ChdbStore, start: date, end: date) -> dict[str, Any]:
    text, params = funnels_query(FUNNELS, start, end)
    [row] = store.query_rows(text, params)
    return row


def _ranges() -> list[tuple[date, date]]:
    """Ranges ending before, on and after the horizon, from the first day and from later."""
    starts = [FIRST, FIRST + timedelta(days=3), date(2026, 11, 9), HORIZON]
    ends = [date(2026, 11, 9), date(2026, 11, 12), HORIZON, date(2026, 11, 17), LAST]
    return [(s, e) for s in starts for e in ends if e >= s]


def test_stored_walks_give_the_walk_from_the_events(data: ChdbStore) -> None:
    built = build(data, FUNNELS, HORIZON, days=15)
    assert (built.starts, built.continued) == (15, 0)
    for start, end in _ranges():
        usable = stored_walks(data, FUNNELS, start, end)
        assert usable is not None and usable.until == min(end, HORIZON), (start, end)
        got, expected = funnel_totals(data, FUNNELS, start, end), _from_events(data, start, end)
        assert got == expected, (start, end)
    some = _from_events(data, FIRST, LAST)
    assert some["f0_reached_3"] > 0 and some["f1_reached_2"] > 0  # every kind of step is met


def test_late_events_and_prompts_are_walked_from_the_day_they_changed(data: ChdbStore) -> None:
    build(data, FUNNELS, HORIZON, days=15)
    rng = random.Random(11)
    late = datetime(2026, 11, 10, 23, 59, 59, tzinfo=UTC)
    # A feature use that moves users on, for a user seen before and for a new one.
    _insert(data, "frontend_events", [
        _event("w3", late, rng) | {"event_type": "feature_usage", "event_action": "open"},
        _event("late", late, rng) | {"event_type": "chat_interaction"},
    ])  # fmt: skip
    usable = stored_walks(data, FUNNELS, FIRST, LAST)
    assert usable is not None and usable.until == date(2026, 11, 9)
    assert stored_walks(data, FUNNELS, date(2026, 11, 10), LAST) is None
    _insert(data, "prompt_analytics", [_prompt("w1", datetime(2026, 11, 6, 8, tzinfo=UTC), 0.95)])
    usable = stored_walks(data, FUNNELS, FIRST, LAST)
    assert usable is not None and usable.until == date(2026, 11, 5)
    for start, end in _ranges():
        assert funnel_totals(data, FUNNELS, start, end) == _from_events(data, start, end)


def test_a_browser_that_signs_in_after_a_build_joins_its_person_from_its_first_day(
    data: ChdbStore,
) -> None:
    """A browser's anonymous events (stored under its own id) walk as its own until someone
    signs in on it; then they are that person's, and a build from before the sign-in holds
    only up to the day before the browser's first anonymous event."""
    rng = random.Random(13)
    anonymous = [
        _event("b-x", _at(day, rng), rng) | {"anonymous_id": "b-x", "event_type": kind}
        for day, kind in ((date(2026, 11, 4), "chat_interaction"),
                          (date(2026, 11, 6), "feature_usage"))
    ]  # fmt: skip
    _insert(data, "frontend_events", anonymous)
    build(data, FUNNELS, HORIZON, days=15)
    before = _from_events(data, FIRST, LAST)
    sign_in = _event("w4", datetime(2026, 11, 16, 9, tzinfo=UTC), rng) | {"anonymous_id": "b-x"}
    _insert(data, "frontend_events", [sign_in])
    usable = stored_walks(data, FUNNELS, FIRST, LAST)
    assert usable is not None and usable.until == date(2026, 11, 3)
    after = _from_events(data, FIRST, LAST)
    assert after != before  # one walk fewer: the browser's first steps are w4's now
    assert after["f0_reached_0"] == before["f0_reached_0"] - 1
    for start, end in _ranges():
        assert funnel_totals(data, FUNNELS, start, end) == _from_events(data, start, end)


def test_other_funnels_and_older_starts_walk_the_events(data: ChdbStore) -> None:
    build(data, FUNNELS, HORIZON, days=10)  # starts from Nov 6
    assert stored_walks(data, FUNNELS, FIRST, LAST) is None
    assert stored_walks(data, FUNNELS, date(2026, 11, 6), LAST) is not None
    other = {"chat": [{"name": "any", "match": {}},
                      {"name": "chat", "match": {"event_type": "chat_interaction"}}]}  # fmt: skip
    assert stored_walks(data, other, date(2026, 11, 6), LAST) is None
    text, params = funnels_query(other, date(2026, 11, 6), LAST)
    assert funnel_totals(data, other, date(2026, 11, 6), LAST) == data.query_rows(text, params)[0]


def test_a_stopped_build_is_never_read(data: ChdbStore) -> None:
    stopping = threading.Event()
    stopping.set()
    with pytest.raises(Stopped):
        build(data, FUNNELS, HORIZON, days=15, stopping=stopping)
    assert stored_walks(data, FUNNELS, FIRST, LAST) is None


def test_the_builder_builds_once_a_day_up_to_yesterday(data: ChdbStore) -> None:
    now = datetime(2026, 11, 16, 0, 5, tzinfo=UTC).timestamp()
    builder = FunnelWalkBuilder(data, lambda: FUNNELS, lambda: now, days=15)
    assert builder.build_if_due() is not None  # the 14th, as the 15th is not settled at 00:05
    assert builder.status()["built_up_to"] == "2026-11-14"
    now += 600
    built = builder.build_if_due()
    assert built is not None and built.horizon == HORIZON
    assert builder.build_if_due() is None
    now += 86_400
    later = builder.build_if_due()
    assert later is not None and later.horizon == HORIZON + timedelta(days=1)
    assert funnel_totals(data, FUNNELS, FIRST, LAST) == _from_events(data, FIRST, LAST)


def test_a_build_older_than_two_days_is_not_read(data: ChdbStore) -> None:
    built = build(data, FUNNELS, HORIZON, days=15)
    assert stored_walks(data, FUNNELS, FIRST, LAST) is not None
    # As if it had run 60 hours ago (not yet expired): its row with an older generation.
    data.execute(
        "INSERT INTO analytics.funnel_builds SELECT config, horizon, generation - {d:UInt64}, "
        "first_start, events, prompts, seconds, linked FROM analytics.funnel_builds",
        {"d": 60 * 3_600_000_000},
    )
    data.execute("DELETE FROM analytics.funnel_builds WHERE generation = {g:UInt64}",
                 {"g": built.generation})  # fmt: skip
    assert data.query_rows("SELECT count() AS n FROM analytics.funnel_builds")[0]["n"] == 1
    assert stored_walks(data, FUNNELS, FIRST, LAST) is None
    assert funnel_totals(data, FUNNELS, FIRST, LAST) == _from_events(data, FIRST, LAST)


def test_a_build_walks_on_from_the_one_before(data: ChdbStore) -> None:
    """The next night's build goes on from the last one's walks, from the day after its
    horizon, or from the day before one that changed; starts from that day on are walked
    from the events."""
    first = build(data, FUNNELS, HORIZON - timedelta(days=1), days=15)
    rng = random.Random(5)
    late = datetime(2026, 11, 10, 12, tzinfo=UTC)
    _insert(data, "frontend_events", [_event("w7", late, rng) | {"event_type": "feature_usage"}])
    second = build(data, FUNNELS, HORIZON, days=15)
    # Starts Nov 1-9 go on from the first build's walks up to Nov 9, Nov 11-14 from theirs up
    # to Nov 14; Nov 10 is walked from the events (its first day changed), and Nov 15 is new.
    assert (first.continued, second.starts, second.continued) == (0, 15, 13)
    for start, end in _ranges():
        usable = stored_walks(data, FUNNELS, start, end)
        assert usable is not None and usable.generation == second.generation
        assert funnel_totals(data, FUNNELS, start, end) == _from_events(data, start, end)


def test_today_and_yesterday_are_walked_from_the_recent_events(store: ChdbStore) -> None:
    """A range ending today goes on from last night's walks through yesterday's and today's
    events as recent_events has them: the same as the walk from frontend_events."""
    rng = random.Random(3)
    today = datetime.now(UTC).date()
    events, prompts = [], []
    for u in range(20):
        for back in sorted(rng.sample(range(6), rng.randint(1, 5)), reverse=True):
            at = _at(today - timedelta(days=back), rng)
            events.append(_event(f"r{u}", at, rng))
            if rng.random() < 0.5:
                prompts.append(_prompt(f"r{u}", at, rng.choice([0.3, 0.7])))
    _insert(store, "frontend_events", events)
    _insert(store, "prompt_analytics", prompts)
    build(store, FUNNELS, today - timedelta(days=2), days=5)
    for start in (today - timedelta(days=4), today - timedelta(days=1), today):
        usable = stored_walks(store, FUNNELS, start, today)
        assert usable is None or usable.until == today - timedelta(days=2)
        text, params = walk_query(FUNNELS, rows_from=start, end=today, stored=None,
                                  per_user=False, events="frontend_events")  # fmt: skip
        assert params["events"] == "frontend_events"
        [expected] = store.query_rows(text, params)
        assert funnel_totals(store, FUNNELS, start, today) == expected, start
    assert funnels_query(FUNNELS, today, today)[1]["events"] == "recent_events"


def test_ready_tells_how_far_the_walks_are_built(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    client = make_client(funnel_walk_days=5)
    yesterday = (datetime.now(UTC) - timedelta(minutes=10)).date() - timedelta(days=1)

    def walks() -> Any:
        return client.get("/health/ready").json()["checks"].get("funnel_walks", {})

    wait_until(lambda: walks().get("built_up_to") == yesterday.isoformat(), timeout=30)
    assert walks()["last_error"] is None
