"""The pure parts of the panels: Sankey links without cycles, period labels across clock
changes, the health score's formula, and the catalog's consistency."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import HTTPException
from hypothesis import given
from hypothesis import strategies as st

from netra_analytics.dashboards.catalog import (
    DASHBOARDS,
    PANELS,
    PANELS_BY_ID,
    Filter,
    SqlQuery,
)
from netra_analytics.dashboards.panels import (
    PARAMETER,
    Window,
    acyclic_moves,
    health_parts,
    health_score,
    panel_sql,
    period_labels,
)
from netra_analytics.dashboards.routes import parse_time

PAGES = st.sampled_from(["/a", "/b", "/c", "/d", "/e"])
MOVES = st.lists(
    st.fixed_dictionaries({"from": PAGES, "to": PAGES, "moves": st.integers(1, 100)}),
    max_size=25,
)


def has_cycle(links: list[list[object]]) -> bool:
    after: dict[object, set[object]] = {}
    for source, target, _ in links:
        after.setdefault(source, set()).add(target)

    def reaches(start: object, goal: object, seen: set[object]) -> bool:
        for nxt in after.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    return any(reaches(page, page, set()) for page in after)


@given(MOVES)
def test_sankey_links_never_form_a_cycle(moves: list[dict[str, object]]) -> None:
    links = acyclic_moves(moves)
    assert not has_cycle(links)
    given_links = {(m["from"], m["to"], m["moves"]) for m in moves}
    assert {tuple(link) for link in links} <= given_links
    # Each link left out would have closed a cycle with those kept (or was a self move).
    for m in moves:
        link = [m["from"], m["to"], m["moves"]]
        if link not in links and m["from"] != m["to"]:
            assert has_cycle([*links, link])


def test_hour_labels_across_the_autumn_clock_change() -> None:
    # Paris, 25 October 2026: 03:00 CEST becomes 02:00 CET; the local 02:00 hour happens twice,
    # and the SQL's label for both is the same, so it is one period.
    window = Window(
        datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 4, tzinfo=UTC), "", {}
    )
    labels = period_labels(window, "Europe/Paris", hourly=True)
    assert labels == [f"2026-10-25 0{h}:00" for h in range(5)]


def test_day_labels_in_the_viewers_zone() -> None:
    window = Window(
        datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC), "", {}
    )
    assert period_labels(window, "Europe/Paris", hourly=False) == [
        "2026-03-29", "2026-03-30", "2026-03-31",
    ]  # fmt: skip
    assert period_labels(window, "UTC", hourly=False) == [
        "2026-03-28", "2026-03-29", "2026-03-30", "2026-03-31",
    ]  # fmt: skip


def test_the_health_score() -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    healthy = {"events": 1000, "errors": 0, "rejected": 0, "p95_response_ms": 1500.0,
               "latest_event": "2026-11-30 11:59:00.000"}  # fmt: skip
    assert health_score(health_parts(healthy, now, writer_ok=True)) == 100.0
    sick = healthy | {"errors": 100, "rejected": 1000, "p95_response_ms": 6000.0,
                      "latest_event": "2026-11-30 10:00:00.000"}  # fmt: skip
    parts = health_parts(sick, now, writer_ok=False)
    assert parts == {"store": 0.0, "errors": 0.9, "rejected": 0.5, "latency": 0.5, "freshness": 0.0}
    assert health_score(parts) == 38.0
    empty = {"events": 0, "errors": 0, "rejected": 0, "p95_response_ms": float("nan"),
             "latest_event": "1970-01-01 00:00:00.000"}  # fmt: skip
    assert health_parts(empty, now, writer_ok=True)["freshness"] == 0.0


def test_the_catalog_is_consistent() -> None:
    assert len(PANELS_BY_ID) == len(PANELS)
    used = {panel for board in DASHBOARDS for panel in board.panels}
    assert used == set(PANELS_BY_ID), "every panel on a dashboard, every id defined"
    known = {"from", "to", "tz", "hourly", "stop_words", *(f.value for f in Filter)}
    for panel in PANELS:
        assert panel.title and panel.description and panel.unit
        if isinstance(panel.query, SqlQuery):
            text = panel_sql(panel.query.file)
            assert text.startswith("--"), "a header comment says what it answers"
            named = set(PARAMETER.findall(text))
            assert named <= known
            filters = {f.value for f in Filter} & named
            assert filters == {f.value for f in panel.filters}, panel.id
            assert not re.search(r"\{\{|%s|\.format\(", text)


@given(st.one_of(st.text(max_size=40), st.datetimes().map(lambda d: d.isoformat()),
                 st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())))  # fmt: skip
def test_any_time_text_is_a_time_or_a_422_naming_it(text: str) -> None:
    try:
        moment = parse_time("from", text, datetime(2026, 1, 1, tzinfo=UTC))
    except HTTPException as exc:
        detail: list[dict[str, Any]] = exc.detail  # type: ignore[assignment]
        assert exc.status_code == 422 and detail[0]["loc"] == ["query", "from"]
    else:
        assert moment.tzinfo is UTC or moment.utcoffset() == timedelta(0)
