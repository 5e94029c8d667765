"""Every catalog panel over the embedded store filled by the demo generator: each answers rows
of the shape its chart draws, and the headline tiles equal independent counts in Python over
the demo's events."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy
import pytest

from netra_analytics.dashboards import routes
from netra_analytics.dashboards.catalog import PANELS, Visualisation
from netra_analytics.dashboards.panels import stop_words
from netra_analytics.prompts.cost import PriceTable, Tokens
from tests.dashboards.conftest import Filled

Event = dict[str, Any]  # in the import's shape: with its `context`


def when(event: Event) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


def between(events: list[Event], start: datetime, end: datetime) -> list[Event]:
    return [e for e in events if start <= when(e) < end]


def on_days(events: list[Event], first: date, last: date) -> list[Event]:
    return [e for e in events if first <= when(e).astimezone(UTC).date() <= last]


def get(filled: Filled, panel: str, **params: Any) -> dict[str, Any]:
    reply = filled.client.get(f"/api/analytics/panels/{panel}", params=params)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def month(filled: Filled) -> dict[str, str]:
    return {
        "from": (filled.now - timedelta(days=30)).isoformat(),
        "to": (filled.now + timedelta(minutes=1)).isoformat(),
    }


def number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_shape(visualisation: Visualisation, columns: list[str], rows: list[list[Any]]) -> None:
    """The rows a chart of this kind draws (catalog.SHAPES)."""
    assert rows, "no rows"
    assert all(len(row) == len(columns) for row in rows)
    if visualisation is Visualisation.stat:
        assert columns == ["value", "previous"] and len(rows) == 1 and number(rows[0][0])
    elif visualisation is Visualisation.timeseries:
        labels = [row[0] for row in rows]
        assert len(columns) >= 2 and labels == sorted(set(labels))
        assert all(number(v) or v is None for row in rows for v in row[1:])  # None: a gap
        assert all(any(number(v) for v in row[1:]) for row in rows)
    elif visualisation is Visualisation.bar:
        assert len(columns) >= 2 and all(isinstance(row[0], str) for row in rows)
        assert all(number(v) for row in rows for v in row[1:])
    elif visualisation is Visualisation.pie:
        assert len(columns) == 2 and all(isinstance(name, str) and v > 0 for name, v in rows)
    elif visualisation is Visualisation.heatmap:
        assert all(0 <= x <= 23 and 1 <= y <= 7 and v > 0 for x, y, v in rows)
    elif visualisation is Visualisation.sankey:
        assert all(
            isinstance(s, str) and isinstance(t, str) and s != t and v > 0 for s, t, v in rows
        )
    elif visualisation is Visualisation.wordcloud:
        assert all(isinstance(term, str) and count > 0 for term, count in rows)
    elif visualisation is Visualisation.cohort_matrix:
        assert columns == ["cohort", "users", "week", "retention"]
        assert all(
            date.fromisoformat(c) and n > 0 and w >= 0 and 0 <= r <= 1 for c, n, w, r in rows
        )
    elif visualisation is Visualisation.funnel:
        users = [row[1] for row in rows]
        assert users == sorted(users, reverse=True) and users[0] > 0
    else:
        assert visualisation is Visualisation.table and columns


@pytest.mark.parametrize("panel", PANELS, ids=[p.id for p in PANELS])
def test_every_panel_answers_the_shape_of_its_chart(filled: Filled, panel: Any) -> None:
    reply = get(filled, panel.id, tz="Europe/Paris", **month(filled))
    assert reply["visualisation"] == panel.visualisation.value
    check_shape(panel.visualisation, reply["columns"], reply["rows"])


def test_headline_tiles_equal_independent_counts(filled: Filled) -> None:
    start, end = filled.now - timedelta(days=7), filled.now + timedelta(minutes=1)
    params = {"from": start.isoformat(), "to": end.isoformat()}
    events = filled.events
    week = between(events, start, end)
    before = between(events, start - (end - start), start)

    def users(chosen: list[Event]) -> int:
        return len({e["context"]["user_id"] for e in chosen})

    def prompts(chosen: list[Event]) -> list[Event]:
        return [e for e in chosen if e["properties"].get("message_type") == "user_prompt"]

    assert get(filled, "active_users", **params)["rows"] == [[users(week), users(before)]]
    assert get(filled, "chat_messages", **params)["rows"] == [
        [len(prompts(week)), len(prompts(before))]
    ]
    asked = prompts(week)
    follow_ups = sum(e["properties"]["is_follow_up"] for e in asked)
    [[rate, _]] = get(filled, "follow_up_rate", **params)["rows"]
    assert rate == pytest.approx(100 * follow_ups / len(asked))

    staging = [e for e in week if e["context"]["environment"] == "staging"]
    assert 0 < users(staging) < users(week)
    assert get(filled, "active_users", environment="staging", **params)["rows"][0][0] == users(
        staging
    )

    # NPS and spend come from their reports, which count whole UTC days.
    first, last = start.date(), (end - timedelta(milliseconds=1)).date()
    days = on_days(events, first, last)
    scores = [
        e["properties"]["score"]
        for e in days
        if e["event_type"] == "feedback_submission" and e["properties"]["feedback_type"] == "nps"
    ]
    nps = 100 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / len(scores)
    reply = get(filled, "nps", **params)
    assert reply["rows"][0][0] == pytest.approx(nps)
    assert reply["covers"] == f"UTC days {first} to {last}"
    assert get(filled, "spend_total", **params)["rows"][0][0] == pytest.approx(
        spend(days), rel=1e-4
    )


def spend(events: list[Event]) -> float:
    """What the prompts of these events cost: an answer's reported cost, else its tokens at the
    price table's price; a prompt never answered, its input tokens at the price of the model
    it was sent to. Each answer belongs to the latest unanswered prompt of its thread."""
    prices = PriceTable.load()
    waiting: dict[str, list[Event]] = {}
    total = 0.0
    for e in sorted(events, key=when):
        props = e["properties"]
        if props.get("message_type") == "user_prompt":
            waiting.setdefault(props["thread_id"], []).append(e)
        elif props.get("message_type") == "ai_response" and waiting.get(props["thread_id"]):
            prompt = waiting[props["thread_id"]].pop()
            if "cost_cents" in props:
                total += props["cost_cents"]
                continue
            tokens = Tokens(prompt["properties"]["input_tokens"], props["output_tokens"])
            total += price(prices, props["model_used"], when(prompt).date(), tokens)
    for prompt in (p for thread in waiting.values() for p in thread):
        props = prompt["properties"]
        tokens = Tokens(input=props["input_tokens"])
        total += price(prices, props["model_used"], when(prompt).date(), tokens)
    return total


def price(prices: PriceTable, model: str, day: date, tokens: Tokens) -> float:
    cents = prices.cost_cents(model, day, tokens)
    assert cents is not None, model
    return cents


def test_the_heatmap_is_in_the_viewers_zone(filled: Filled) -> None:
    params = month(filled)
    zone = ZoneInfo("America/New_York")
    start, end = (datetime.fromisoformat(params[k]) for k in ("from", "to"))
    expected = Counter(
        (when(e).astimezone(zone).hour, when(e).astimezone(zone).isoweekday())
        for e in between(filled.events, start, end)
    )
    rows = get(filled, "usage_heatmap", tz="America/New_York", **params)["rows"]
    assert {(x, y): v for x, y, v in rows} == expected


def test_the_word_cloud_counts_words_of_sanitised_prompts(filled: Filled) -> None:
    """The commonest words, each counted once per prompt, as Python splits the prompts with
    their e-mail addresses (the demo's only personal data) taken out: the addresses, the
    placeholder the sanitiser puts in their place, and the stop words never appear."""
    address = re.compile(r"\S+@\S+")
    prompts = [e["properties"]["prompt_text"] for e in filled.events
               if e["properties"].get("message_type") == "user_prompt"]  # fmt: skip
    assert any(address.search(text) for text in prompts)  # the demo sends some addresses
    counted: Counter[str] = Counter()
    for text in prompts:
        words = set(re.split(r"[^a-z0-9_]+", address.sub(" ", text).lower()))
        counted.update(w for w in words if len(w) >= 3 and not re.fullmatch(r"[0-9_]+", w))
    for word in stop_words():
        counted.pop(word, None)
    expected = sorted(counted.items(), key=lambda item: (-item[1], item[0]))[:80]
    rows = get(filled, "prompt_terms", **month(filled))["rows"]
    assert [tuple(row) for row in rows] == expected
    assert not {term for term, _ in rows} & {"email", "acme", "globex", "initech", "jane"}


def test_a_filter_a_panel_does_not_honour_is_named(filled: Filled) -> None:
    reply = get(filled, "usage_heatmap", category="debugging", **month(filled))
    assert reply["filters_ignored"] == ["category"] and reply["filters_applied"] == []
    terms = get(filled, "prompt_terms", category="debugging", **month(filled))
    assert terms["filters_applied"] == ["category"]
    everything = get(filled, "prompt_terms", **month(filled))
    assert terms["rows"] != everything["rows"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01T00:00:00Z"}, "to"),
        ({"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "to"),
        ({"from": "2025-01-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "to"),
        ({"from": "1969-12-31T00:00:00Z", "to": "1970-03-01T00:00:00Z"}, "from"),
        ({"tz": "Mars/Olympus_Mons"}, "tz"),
        ({"environment": "x" * 300}, "environment"),
        ({"format": "xml"}, "format"),
    ],
)
def test_bad_parameters_are_422_naming_them(
    filled: Filled, params: dict[str, str], named: str
) -> None:
    reply = filled.client.get("/api/analytics/panels/active_users", params=params)
    assert reply.status_code == 422, reply.text
    assert [d["loc"][-1] for d in reply.json()["detail"]] == [named]


def test_an_unknown_panel_is_404(filled: Filled) -> None:
    reply = filled.client.get("/api/analytics/panels/nope")
    assert reply.status_code == 404 and "nope" in reply.json()["detail"]


def test_long_ranges_are_cached_like_the_reports(filled: Filled) -> None:
    first = filled.client.get("/api/analytics/panels/top_features", params=month(filled))
    again = filled.client.get("/api/analytics/panels/top_features", params=month(filled))
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
    assert again.json() == first.json()
    day = {"from": (filled.now - timedelta(hours=24)).isoformat(), "to": filled.now.isoformat()}
    short = filled.client.get("/api/analytics/panels/top_features", params=day)
    assert short.headers["cache-control"] == "no-store"


def test_a_slow_panel_answers_503(filled: Filled, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "PANEL_TIMEOUT_SECONDS", 1e-6)
    hour = {"from": (filled.now - timedelta(hours=1)).isoformat(), "to": filled.now.isoformat()}
    reply = filled.client.get("/api/analytics/panels/user_segments", params=hour)
    assert reply.status_code == 503
    assert reply.json()["error"] == "PanelTimeout" and "user_segments" in reply.json()["message"]
    assert reply.headers["retry-after"] == "5"


def test_every_panel_downloads_as_csv(filled: Filled) -> None:
    for panel in ("frequent_questions", "cohort_retention", "active_users"):
        data = get(filled, panel, **month(filled))
        reply = filled.client.get(
            f"/api/analytics/panels/{panel}", params={**month(filled), "format": "csv"}
        )
        assert reply.headers["content-type"].startswith("text/csv")
        assert f'filename="{panel}_' in reply.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(reply.text)))
        assert rows[0] == data["columns"] and len(rows) == len(data["rows"]) + 1


def test_csv_cells_never_run_as_formulas() -> None:
    assert routes.csv_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert routes.csv_cell("@cmd") == "'@cmd"
    assert routes.csv_cell("plain") == "plain"
    assert routes.csv_cell(-3) == -3
    assert routes.csv_cell(None) == ""


def test_the_catalog_lists_filter_values(filled: Filled) -> None:
    catalog = filled.client.get("/api/analytics/dashboards", params=month(filled)).json()
    assert catalog["events_stored"] is True
    assert catalog["environments"] == sorted({e["context"]["environment"] for e in filled.events})
    assert catalog["app_versions"] == sorted({e["context"]["app_version"] for e in filled.events})
    assert len(catalog["environments"]) == 2 and len(catalog["app_versions"]) == 3
    assert set(catalog["panels"]) == {p.id for p in PANELS}


def test_the_daily_spend_ends_in_the_projection(filled: Filled) -> None:
    params = month(filled)
    rows = get(filled, "spend_daily", **params)["rows"]
    measured = {day: cents for day, cents, _ in rows if cents is not None}
    projected = [cents for _, spent, cents in rows if spent is None]
    first = datetime.fromisoformat(params["from"]).date()
    last = (datetime.fromisoformat(params["to"]) - timedelta(milliseconds=1)).date()
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    ys = [measured.get(day.isoformat(), 0.0) for day in days]
    slope, intercept = numpy.polyfit(range(len(ys)), ys, 1)
    line = [max(0.0, intercept + slope * x) for x in range(len(ys), len(ys) + 30)]
    assert projected == pytest.approx(line, rel=1e-6, abs=1e-9)
    [[total, _]] = get(filled, "spend_projection", **params)["rows"]
    assert sum(projected) == pytest.approx(total)
