"""The historical import (`POST /api/analytics/import`) against the real embedded ClickHouse.

Tested like ingestion: timestamps kept as sent, events beyond the retention rejected one by one,
a repeated import stores nothing twice, and the summary views count what the table holds.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import orjson
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from netra_analytics.ingest.process import (
    EVENT_RETENTION,
    IMPORT,
    SKEW_TOLERANCE_MS,
    EventTime,
    RequestInfo,
    TimeRejection,
    event_time,
    format_timestamp,
    process,
)
from netra_analytics.ingest.throttle import EventBudget
from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import BROWSER_USER_AGENT, body, event, random_event
from tests.support.processes import wait_until

URL = "/api/analytics/import"
HTTP_LIBRARY = "python-httpx/0.28.1"  # on the bot list: the import client's own user agent


def _post(client: TestClient, payload: Any, url: str = URL, **headers: str) -> Any:
    return client.post(
        url,
        content=orjson.dumps(payload),
        headers={"content-type": "application/json", "user-agent": HTTP_LIBRARY, **headers},
    )


def _count(store: ChdbStore, table: str = "frontend_events") -> int:
    return int(store.query_rows(f"SELECT count() AS n FROM analytics.{table}")[0]["n"])


def _at(when: datetime, **changes: Any) -> dict[str, Any]:
    return {**event("feature_usage"), "timestamp": when.isoformat(), **changes}


def _drained(client: TestClient) -> bool:
    checks = client.get("/health/ready").json()["checks"]
    return bool(checks["spool"]["backlog_bytes"] == 0 and "writer" in checks)


def test_historical_timestamps_are_kept_as_sent(client: TestClient, store: ChdbStore) -> None:
    now = datetime.now(UTC)
    times = [now - timedelta(days=d, minutes=7) for d in (0, 1, 8, 30, 60, 89)]
    # sent_at a day off: the events endpoint would move every event by a day; import must not.
    payload = {**body([_at(t) for t in times]), "sent_at": (now - timedelta(days=1)).isoformat()}
    reply = _post(client, payload)
    assert reply.status_code == 202, reply.text
    assert reply.json() == {"accepted": 6, "rejected": []}
    wait_until(lambda: _count(store) == 6, timeout=20)
    rows = store.query_rows(
        "SELECT timestamp, properties, user_agent, ip_address FROM analytics.frontend_events "
        "ORDER BY timestamp"
    )
    assert [r["timestamp"] for r in rows] == [
        format_timestamp(t).replace("T", " ").rstrip("Z") for t in sorted(times)
    ]
    for row in rows:
        assert "_client_timestamp" not in orjson.loads(row["properties"])
        # The import's client is neither the browser nor where the person was.
        assert row["user_agent"] == "" and row["ip_address"] == ""


def test_events_beyond_the_retention_are_rejected_one_by_one(
    client: TestClient, store: ChdbStore
) -> None:
    now = datetime.now(UTC)
    events = [
        _at(now - timedelta(days=91)),
        _at(now - timedelta(days=89)),
        _at(now + timedelta(hours=1)),
        {k: v for k, v in event("feature_usage").items() if k != "timestamp"},
        _at(now - timedelta(days=3)),
    ]
    reply = _post(client, body(events)).json()
    assert reply["accepted"] == 2
    reasons = [(r["index"], r["reason"], r["errors"][0]["field"]) for r in reply["rejected"]]
    assert reasons == [
        (0, "beyond_retention", "timestamp"),
        (2, "in_future", "timestamp"),
        (3, "invalid_event", "timestamp"),
    ]
    assert "90 days" in reply["rejected"][0]["errors"][0]["message"]
    wait_until(lambda: _count(store) == 2 and _count(store, "rejected_events") == 3, timeout=20)
    stored = {r["reason"] for r in store.query_rows("SELECT reason FROM analytics.rejected_events")}
    assert stored == {"beyond_retention", "in_future", "invalid_event"}


def test_a_repeated_import_stores_nothing_twice_and_the_views_agree(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    client = make_client(event_batch_size=500, event_flush_interval_ms=20)
    rng = random.Random(14)
    now = datetime.now(UTC)
    sent: list[tuple[str, dict[str, Any]]] = []
    events: list[dict[str, Any]] = []
    for _ in range(600):
        user = f"user-{rng.randrange(12)}"
        when = now - timedelta(minutes=rng.randrange(10, 80 * 24 * 60))
        item = {**random_event(rng, when), "context": {"user_id": user, "session_id": f"s-{user}"}}
        events.append(item)
        sent.append((user, item))
    payload = {"events": events}
    for _ in range(2):  # the second run is a re-run of the same import: a no-op
        reply = _post(client, payload)
        assert reply.status_code == 202 and reply.json() == {"accepted": 600, "rejected": []}
        wait_until(lambda: _drained(client), timeout=30)
    assert _count(store) == 600
    assert client.get("/health/ready").json()["checks"]["writer"]["duplicates_skipped"] == 600
    expected = Counter(
        (user, datetime.fromisoformat(e["timestamp"]).date().isoformat()) for user, e in sent
    )
    rows = store.query_rows(
        "SELECT user_id, toString(date) AS day, sum(total_events) AS n "
        "FROM analytics.user_analytics_summary GROUP BY user_id, date"
    )
    assert {(r["user_id"], r["day"]): int(r["n"]) for r in rows} == dict(expected)
    [rollup] = store.query_rows(
        "SELECT sum(total_events) AS n FROM analytics.activity_rollup WHERE resolution = 'day'"
    )
    assert int(rollup["n"]) == 600


def test_each_event_carries_its_own_context_and_browser(
    client: TestClient, store: ChdbStore
) -> None:
    when = (datetime.now(UTC) - timedelta(days=20)).isoformat()
    events = [
        {**event("feature_usage"), "timestamp": when,
         "context": {"user_id": "ann", "session_id": "s1", "page_path": "/chat",
                     "user_agent": BROWSER_USER_AGENT}},
        {**event("feature_usage"), "timestamp": when,
         "context": {"anonymous_id": "browser-7", "session_id": "s2", "page_path": "/pricing"}},
        {**event("feature_usage"), "timestamp": when},  # the envelope's context
        {**event("feature_usage"), "timestamp": when,
         "context": {"user_id": "crawler", "session_id": "s3",
                     "user_agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"}},
        {**event("feature_usage"), "timestamp": when,
         "context": {"user_id": "undefined", "session_id": "s4"}},
        {**event("feature_usage"), "timestamp": when, "properties": {"feature_name": "x"},
         "context": {"user_id": "carol", "session_id": "s5"}},
    ]  # fmt: skip
    reply = _post(client, body(events, user_id="bob")).json()
    assert reply["accepted"] == 4
    assert [(r["index"], r["reason"], r["errors"][0]["field"]) for r in reply["rejected"]] == [
        (4, "invalid_event", "context.user_id"),
        (5, "invalid_properties", "properties.action"),
    ]
    wait_until(lambda: _count(store) == 3 and _count(store, "bot_events") == 1, timeout=20)
    wait_until(lambda: _count(store, "rejected_events") == 2, timeout=20)
    rejected = store.query_rows(
        "SELECT user_id FROM analytics.rejected_events ORDER BY event_index"
    )
    assert [r["user_id"] for r in rejected] == ["", "carol"]  # whose event it was, if known
    rows = store.query_rows(
        "SELECT user_id, session_id, page_path, user_agent FROM analytics.frontend_events "
        "ORDER BY user_id"
    )
    assert [(r["user_id"], r["session_id"], r["page_path"], r["user_agent"]) for r in rows] == [
        ("ann", "s1", "/chat", BROWSER_USER_AGENT),
        ("bob", "session-bob", "/chat", ""),
        ("browser-7", "s2", "/pricing", ""),
    ]
    [bot] = store.query_rows("SELECT user_id FROM analytics.bot_events")
    assert bot["user_id"] == "crawler"


def test_an_import_without_any_context_rejects_each_event(client: TestClient) -> None:
    when = datetime.now(UTC).isoformat()
    reply = _post(client, {"events": [_at(datetime.now(UTC)), {**_at(datetime.now(UTC)),
                  "context": {"user_id": "u", "session_id": "s"}, "timestamp": when}]})  # fmt: skip
    assert reply.status_code == 202
    assert reply.json()["accepted"] == 1
    assert [(r["index"], r["errors"][0]["field"]) for r in reply.json()["rejected"]] == [
        (0, "context")
    ]


def test_import_does_not_count_against_the_browser_rate_limit(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(max_events_per_user_per_minute=10)
    now = datetime.now(UTC)
    history = [_at(now - timedelta(minutes=1 + i)) for i in range(50)]
    assert _post(client, body(history)).json() == {"accepted": 50, "rejected": []}
    live = [event("feature_usage") for _ in range(10)]
    reply = _post(client, body(live), url="/api/analytics/events", **{"user-agent": "Browser/1"})
    assert reply.status_code == 202 and reply.json()["accepted"] == 10


def test_import_has_its_own_bound(make_client: Callable[..., TestClient]) -> None:
    client = make_client(import_events_per_second=1)
    when = datetime.now(UTC) - timedelta(days=2)
    batch = [_at(when) for _ in range(IMPORT.max_events)]
    assert _post(client, body(batch)).json()["accepted"] == IMPORT.max_events
    refused = _post(client, body([_at(when)]))
    assert refused.status_code == 429
    assert refused.json()["error"] == "RateLimited"
    assert int(refused.headers["retry-after"]) >= 1


def test_import_takes_larger_requests_than_browsers(client: TestClient) -> None:
    when = datetime.now(UTC) - timedelta(days=2)
    comment = "x" * 2000  # 600 events of ~2 KB: over the browser's 1 MiB and 500 events
    events = [{**_at(when), "event_type": "feedback_submission",
               "properties": {"feedback_type": "feature_request", "comment": comment}}
              for _ in range(600)]  # fmt: skip
    payload = body(events)
    assert len(orjson.dumps(payload)) > 1 << 20
    assert _post(client, payload).json()["accepted"] == 600
    assert _post(client, payload, url="/api/analytics/events").status_code == 413
    too_many = body([_at(when) for _ in range(IMPORT.max_events + 1)])
    reply = _post(client, too_many)
    assert reply.status_code == 413 and str(IMPORT.max_events) in reply.json()["message"]


def test_the_import_is_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    body = paths[URL]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["events"]["maxItems"] == IMPORT.max_events
    assert "timestamp" in body["$defs"]["Event"]["required"]


def test_the_retention_bound_is_the_tables_ttl() -> None:
    migration = (
        resources.files("netra_analytics.store") / "migrations" / "0001_frontend_events.sql"
    ).read_text()
    [days] = re.findall(r"TTL toDateTime\(timestamp\) \+ INTERVAL (\d+) DAY", migration)
    assert timedelta(days=int(days)) == EVENT_RETENTION


NOW = datetime(2026, 11, 25, 12, 0, 0, 123000, tzinfo=UTC)


@given(
    client=st.datetimes(timezones=st.just(UTC) | st.none()),
    sent_ms=st.none() | st.integers(0, 4_000_000_000_000),
)
@settings(max_examples=300, deadline=None)
def test_import_keeps_every_time_as_sent_or_names_why_not(
    client: datetime, sent_ms: int | None
) -> None:
    outcome = event_time(client, sent_ms, NOW, EVENT_RETENTION, policy=IMPORT)
    aware = client if client.tzinfo else client.replace(tzinfo=UTC)
    if isinstance(outcome, TimeRejection):
        assert outcome.error.field == "timestamp"
        if outcome.reason == "beyond_retention":
            assert aware < NOW - EVENT_RETENTION
        else:
            assert outcome.reason == "in_future"
            assert aware > NOW + timedelta(milliseconds=SKEW_TOLERANCE_MS)
        return
    assert isinstance(outcome, EventTime)
    assert NOW - EVENT_RETENTION <= outcome.timestamp <= NOW
    if aware <= NOW:  # kept as sent, whatever sent_at says
        assert format_timestamp(outcome.timestamp) == format_timestamp(aware)


def test_process_under_the_import_policy_ignores_sent_at() -> None:
    info = RequestInfo(received_at=NOW, max_event_age=EVENT_RETENTION)
    when = NOW - timedelta(days=40)
    payload = {**body([_at(when)]), "sent_at": (NOW - timedelta(days=30)).isoformat()}
    [accepted] = process(orjson.dumps(payload), info, IMPORT).accepted
    assert accepted.timestamp == when


def test_the_event_budget_refills_at_its_rate() -> None:
    budget = EventBudget(rate=100, burst=500)
    assert budget.take(500, now=0.0) == 0
    assert budget.take(100, now=0.5) == 1  # 50 back after half a second: 50 short, 1 s
    assert budget.take(100, now=1.0) == 0
    assert budget.take(600, now=100.0) == 0  # more than the burst: waits for a full bucket
    assert budget.take(1, now=100.0) == 1


def test_only_recent_imported_events_reach_the_live_state(client: TestClient) -> None:
    now = datetime.now(UTC)
    events = [
        {**_at(now - timedelta(days=1)), "context": {"user_id": "old", "session_id": "s-old"}},
        {**_at(now - timedelta(minutes=1)), "context": {"user_id": "new", "session_id": "s-new"}},
    ]
    assert _post(client, {"events": events}).json()["accepted"] == 2
    wait_until(
        lambda: client.get("/api/analytics/reports/engagement").json()["active_users"] == 1, 10
    )
    assert client.get("/api/analytics/reports/sessions/s-new").status_code == 200
    assert client.get("/api/analytics/reports/sessions/s-old").status_code == 404
