"""Session paths: moves computed per day, kept for days that can no longer change, and computed
again when late events change a kept day, checked against an independent walk in Python."""

from __future__ import annotations

import itertools
import random
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from netra_analytics.reports.paths import page_moves
from netra_analytics.store.chdb_backend import ChdbStore

PAGES = ["/home", "/chat", "/costs", "/settings", ""]
TODAY = datetime.now(UTC).date()


def _events(rng: random.Random, first: date, days: int, sessions: int) -> list[dict[str, Any]]:
    events = []
    for s in range(sessions):
        at = datetime(first.year, first.month, first.day, tzinfo=UTC) + timedelta(
            minutes=rng.randrange(days * 24 * 60)
        )
        for _ in range(rng.randrange(1, 8)):
            at += timedelta(seconds=rng.randrange(1, 900))  # some sessions cross midnight
            events.append({"session": f"s{s}", "at": at, "page": rng.choice(PAGES)})
    return events


def _insert(store: ChdbStore, events: list[dict[str, Any]]) -> None:
    rows = [
        orjson.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "timestamp": e["at"].strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                "user_id": "u-" + e["session"],
                "session_id": e["session"],
                "event_type": "feature_usage",
                "event_category": "interaction",
                "page_path": e["page"],
                "properties": "{}",
            }
        )
        for e in events
    ]
    store.insert_json_rows("frontend_events", b"\n".join(rows))


def _expected(events: list[dict[str, Any]], first: date, last: date) -> Counter[tuple[str, str]]:
    """Consecutive pages of a session on the same or the next UTC day (a move counted on the day
    it ends), walked in Python."""
    moves: Counter[tuple[str, str]] = Counter()
    by_session: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_session.setdefault(e["session"], []).append(e)
    for items in by_session.values():
        ordered = sorted(items, key=lambda e: e["at"])
        for a, b in itertools.pairwise(ordered):
            close = (b["at"].date() - a["at"].date()).days <= 1
            moved = a["page"] and b["page"] and a["page"] != b["page"]
            if moved and close and first <= b["at"].date() <= last:
                moves[(a["page"], b["page"])] += 1
    return moves


def _as_counter(report: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter({(m["from"], m["to"]): m["moves"] for m in report})


def _kept_days(store: ChdbStore) -> list[str]:
    rows = store.query_rows(
        "SELECT DISTINCT toString(date) AS d FROM analytics.path_moves ORDER BY d"
    )
    return [r["d"] for r in rows]


def test_moves_are_kept_for_settled_days_and_read_back(store: ChdbStore) -> None:
    rng = random.Random(7)
    first = TODAY - timedelta(days=12)
    events = _events(rng, first, 12, 400)  # up to today, which is never kept
    _insert(store, events)
    last = TODAY
    cold = page_moves(store, first, last, 100)
    assert _as_counter(cold) == _expected(events, first, last)
    kept = _kept_days(store)
    # never today, which changes with every event
    assert kept and max(kept) <= (TODAY - timedelta(days=1)).isoformat()
    assert min(kept) >= first.isoformat()
    assert page_moves(store, first, last, 100) == cold
    # A kept day is read, not computed again: a newer computation of it, planted with the
    # same counts, is what the report adds up.
    [day] = store.query_rows(
        "SELECT date, max(generation) AS g, argMax(events_before, generation) AS eb, "
        "argMax(events, generation) AS e FROM analytics.path_moves "
        "WHERE date = {d:Date} GROUP BY date",
        {"d": date.fromisoformat(kept[0])},
    )
    planted = {"date": day["date"], "generation": day["g"] + 1, "events_before": day["eb"],
               "events": day["e"], "from_page": "/planted", "to_page": "/here", "moves": 5}  # fmt: skip
    marker = planted | {"from_page": "", "to_page": "", "moves": 0}
    store.insert_json_rows("path_moves", orjson.dumps(marker) + b"\n" + orjson.dumps(planted))
    assert _as_counter(page_moves(store, first, last, 100))[("/planted", "/here")] == 5
    # A narrower range adds up only its own days (the first day's moves may start before it).
    middle, end = first + timedelta(days=3), first + timedelta(days=6)
    assert _as_counter(page_moves(store, middle, end, 100)) == _expected(events, middle, end)


def test_late_events_make_a_kept_day_be_computed_again(store: ChdbStore) -> None:
    rng = random.Random(11)
    first = TODAY - timedelta(days=9)
    events = _events(rng, first, 5, 200)
    _insert(store, events)
    page_moves(store, first, TODAY, 100)
    late_day = datetime.combine(first + timedelta(days=2), datetime.min.time(), UTC)
    late = [
        {"session": "late", "at": late_day + timedelta(hours=3), "page": "/late-a"},
        {"session": "late", "at": late_day + timedelta(hours=3, seconds=5), "page": "/late-b"},
    ]
    _insert(store, late)
    report = _as_counter(page_moves(store, first, TODAY, 100))
    assert report[("/late-a", "/late-b")] == 1
    assert report == _expected(events + late, first, TODAY)


def test_a_move_across_midnight_belongs_to_the_day_it_ends(store: ChdbStore) -> None:
    day = TODAY - timedelta(days=5)
    midnight = datetime.combine(day, datetime.min.time(), UTC)
    events = [
        {"session": "night", "at": midnight - timedelta(seconds=30), "page": "/home"},
        {"session": "night", "at": midnight + timedelta(seconds=30), "page": "/chat"},
    ]
    _insert(store, events)
    for _ in range(2):  # computed, then read back
        assert page_moves(store, day, day, 10) == [{"from": "/home", "to": "/chat", "moves": 1}]
        assert page_moves(store, day - timedelta(days=1), day - timedelta(days=1), 10) == []


def test_ties_are_ranked_by_pages_and_the_limit_holds(store: ChdbStore) -> None:
    day = TODAY - timedelta(days=4)
    start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=1)
    events = []
    for s, (a, b) in enumerate([("/b", "/c"), ("/a", "/c"), ("/a", "/b"), ("/a", "/b")]):
        events += [
            {"session": f"t{s}", "at": start, "page": a},
            {"session": f"t{s}", "at": start + timedelta(seconds=1), "page": b},
        ]
    _insert(store, events)
    assert page_moves(store, day, day, 2) == [
        {"from": "/a", "to": "/b", "moves": 2},
        {"from": "/a", "to": "/c", "moves": 1},
    ]


def test_a_gap_of_more_than_a_day_is_not_a_move(store: ChdbStore) -> None:
    """Whether a day is computed alone or with the days before it, a session's two events two
    days apart are no move."""
    day = TODAY - timedelta(days=6)
    noon = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12)
    events = [
        {"session": "gap", "at": noon - timedelta(days=2), "page": "/home"},
        {"session": "gap", "at": noon, "page": "/chat"},
        {"session": "gap", "at": noon + timedelta(minutes=1), "page": "/costs"},
    ]
    _insert(store, events)
    for first in (day, day - timedelta(days=2)):  # alone, then with the days before it
        store.execute("TRUNCATE TABLE analytics.path_moves")
        assert page_moves(store, first, day, 10) == [{"from": "/chat", "to": "/costs", "moves": 1}]
    assert _expected(events, day - timedelta(days=2), day) == {("/chat", "/costs"): 1}


def test_todays_moves_come_from_the_recent_events(store: ChdbStore) -> None:
    """Today (and the day before, for moves across midnight) is read from recent_events: the
    same moves as the walk in Python, and the same rows as frontend_events has for those days."""
    rng = random.Random(17)
    yesterday = TODAY - timedelta(days=1)
    events = _events(rng, yesterday, 2, 40)
    _insert(store, events)
    copy = "SELECT count() AS n FROM analytics.{t:Identifier} WHERE date >= {d:Date}"
    [recent] = store.query_rows(copy, {"t": "recent_events", "d": yesterday})
    [stored] = store.query_rows(copy, {"t": "frontend_events", "d": yesterday})
    assert recent["n"] == stored["n"] == len([e for e in events if e["at"].date() >= yesterday])
    assert _as_counter(page_moves(store, TODAY, TODAY, 100)) == _expected(events, TODAY, TODAY)
