"""The events endpoint against the real embedded ClickHouse (chDB), in process."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import EXAMPLES, body, event, random_event
from tests.support.processes import wait_until

URL = "/api/analytics/events"


def _post(client: TestClient, payload: Any, **headers: str) -> Any:
    return client.post(
        URL, content=orjson.dumps(payload), headers={"content-type": "application/json", **headers}
    )


def _count(store: ChdbStore, table: str = "frontend_events") -> int:
    return int(store.query_rows(f"SELECT count() AS n FROM analytics.{table}")[0]["n"])


def _wait_count(store: ChdbStore, n: int, table: str = "frontend_events") -> None:
    wait_until(lambda: _count(store, table) == n, timeout=20)


def test_every_event_type_is_stored_with_the_right_columns(
    client: TestClient, store: ChdbStore
) -> None:
    events = [event(t) for t in EXAMPLES]
    reply = _post(
        client,
        body(events, gtm_container_id="GTM-T1"),
        **{"user-agent": "Browser/9", "cf-ipcountry": "fr"},
    )
    assert reply.status_code == 202
    assert reply.json() == {"accepted": 7, "rejected": []}
    _wait_count(store, 7)
    rows = {r["event_type"]: r for r in store.query_rows("SELECT * FROM analytics.frontend_events")}
    expected = {
        "chat_interaction": ("interaction", "user_prompt", "gpt-4o", 120.0),
        "thread_lifecycle": ("interaction", "created", "thread-1", 1.0),
        "feature_usage": ("interaction", "open", "cost_explorer", 42.0),
        "survey_response": ("feedback", "spending", "q4-pulse", 7.0),
        "feedback_submission": ("feedback", "nps", "thread-1", 9.0),
        "performance_metric": ("technical", "page_load", "success", 1234.5),
        "error_tracking": ("technical", "medium", "TypeError", 1.0),
    }
    for sent in events:
        row = rows[sent["event_type"]]
        assert (
            row["event_category"],
            row["event_action"],
            row["event_label"],
            row["event_value"],
        ) == expected[sent["event_type"]]
        assert row["event_id"] == sent["event_id"]
        assert row["user_agent"] == "Browser/9" and row["country_code"] == "FR"
        assert row["gtm_container_id"] == "GTM-T1" and row["page_path"] == "/chat"
        assert len(row["ip_address"]) == 64 and "203.0.113.7" not in str(row)
        stored_props = orjson.loads(row["properties"])
        assert (
            stored_props["thread_id" if "thread_id" in stored_props else next(iter(stored_props))]
            is not None
        )
        sent_time = datetime.fromisoformat(sent["timestamp"])
        assert (
            row["timestamp"]
            == sent_time.strftime("%Y-%m-%d %H:%M:%S.") + f"{sent_time.microsecond // 1000:03d}"
        )
        assert row["date"] == sent_time.date().isoformat() and row["hour"] == sent_time.hour


def test_mixed_batch_stores_valid_and_records_rejected(
    client: TestClient, store: ChdbStore
) -> None:
    events = [
        event("feature_usage"),
        {"event_type": "feature_usage", "properties": {"success": "yes"}},
        event("error_tracking"),
    ]
    reply = _post(client, body(events))
    assert reply.status_code == 202
    data = reply.json()
    assert data["accepted"] == 2
    [rejected] = data["rejected"]
    assert rejected["index"] == 1 and rejected["event_type"] == "feature_usage"
    assert rejected["reason"] == "invalid_properties"
    assert {e["field"] for e in rejected["errors"]} == {
        "properties.feature_name",
        "properties.action",
        "properties.success",
    }
    _wait_count(store, 2)
    _wait_count(store, 1, "rejected_events")
    [row] = store.query_rows("SELECT * FROM analytics.rejected_events")
    assert row["reason"] == "invalid_properties" and row["event_index"] == 1
    assert {e["field"] for e in orjson.loads(row["errors"])} == {
        e["field"] for e in rejected["errors"]
    }
    ttl = store.query_rows(
        "SELECT engine_full FROM system.tables "
        "WHERE database = 'analytics' AND name = 'rejected_events'"
    )
    assert "TTL toDateTime(received_at) + toIntervalDay(7)" in ttl[0]["engine_full"]


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (
            b'{"events": "nope", "context": {"user_id": "u", "session_id": "s"}}',
            "application/json",
            400,
        ),
        (b'{"events": []}', "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'{"events": [], "context": {"user_id": "u", "session_id": "s"}}', "application/xml", 415),
        (b'{"events": [], "context": {"user_id": "u", "session_id": "s"}}', "", 415),
        (b"a=1", "application/x-www-form-urlencoded", 415),
        (b" " * ((1 << 20) + 1), "application/json", 413),
    ],
)
def test_bad_input_statuses(
    client: TestClient, content: bytes, content_type: str, status: int
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    reply = client.post(URL, content=content, headers=headers)
    assert reply.status_code == status
    assert reply.json()["message"]


def test_more_than_500_events_is_413(client: TestClient) -> None:
    reply = _post(client, body([event("feature_usage") for _ in range(501)]))
    assert reply.status_code == 413
    assert "500" in reply.json()["message"]


def test_beacon_text_plain_is_accepted(client: TestClient, store: ChdbStore) -> None:
    reply = client.post(
        URL,
        content=orjson.dumps(body([event("feature_usage")])),
        headers={"content-type": "text/plain;charset=UTF-8"},
    )
    assert reply.status_code == 202 and reply.json()["accepted"] == 1


def test_retry_with_the_same_event_ids_is_stored_once(client: TestClient, store: ChdbStore) -> None:
    payload = body([event("chat_interaction"), event("thread_lifecycle")])
    for _ in range(3):
        assert _post(client, payload).json()["accepted"] == 2
    _wait_count(store, 2)
    wait_until(
        lambda: client.get("/health/ready").json()["checks"]["writer"]["duplicates_skipped"] == 4,
        20,
    )
    assert _count(store) == 2
    [summary] = store.query_rows(
        "SELECT sum(total_events) AS n FROM analytics.user_analytics_summary"
    )
    assert summary["n"] == 2


def test_summary_view_matches_an_independent_computation(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    client = make_client(event_batch_size=50, event_flush_interval_ms=20)
    rng = random.Random(20261125)
    base = datetime.now(UTC) - timedelta(hours=20)
    sent: list[tuple[str, dict[str, Any]]] = []
    for _ in range(40):
        user = f"user-{rng.randrange(6)}"
        events = [
            random_event(rng, base + timedelta(minutes=rng.randrange(0, 20 * 60)))
            for _ in range(rng.randint(1, 30))
        ]
        assert _post(client, body(events, user_id=user)).json()["accepted"] == len(events)
        sent.extend((user, e) for e in events)
    _wait_count(store, len(sent))
    store.execute(
        "OPTIMIZE TABLE analytics.user_analytics_summary FINAL"
    )  # merge: averages must survive

    expected: dict[tuple[str, str], dict[str, Any]] = {}
    for user, e in sent:
        day = datetime.fromisoformat(e["timestamp"]).astimezone(UTC).date().isoformat()
        agg = expected.setdefault(
            (user, day),
            {"total": 0, "chat": 0, "created": 0, "feature": 0, "tokens": 0.0, "rt": [], "ai": []},
        )
        props = e["properties"]
        agg["total"] += 1
        if e["event_type"] == "chat_interaction":
            agg["chat"] += 1
            agg["tokens"] += props.get("tokens_consumed", 0)
            if "response_time_ms" in props:
                agg["ai"].append(props["response_time_ms"])
        agg["created"] += e["event_type"] == "thread_lifecycle" and props["action"] == "created"
        agg["feature"] += e["event_type"] == "feature_usage"
        if e["event_type"] == "performance_metric":
            agg["rt"].append(props["duration_ms"])

    rows = store.query_rows("SELECT * FROM analytics.user_analytics_daily ORDER BY user_id, date")
    assert len(rows) == len(expected)
    for row in rows:
        agg = expected[(row["user_id"], row["date"])]
        assert row["total_events"] == agg["total"]
        assert row["chat_interactions"] == agg["chat"]
        assert row["threads_created"] == agg["created"]
        assert row["feature_interactions"] == agg["feature"]
        assert row["total_tokens_consumed"] == agg["tokens"]
        for column, values in (
            ("avg_response_time", agg["rt"]),
            ("avg_ai_response_time", agg["ai"]),
        ):
            if values:
                assert row[column] == pytest.approx(sum(values) / len(values), rel=1e-9)
            else:
                assert row[column] is None
    batches = client.get("/health/ready").json()["checks"]["writer"]
    assert batches["events_written"] == len(sent)


def test_schema_endpoint_publishes_every_event_type(client: TestClient) -> None:
    schema = client.get("/api/analytics/schema").json()
    assert set(schema["$defs"]["Event"]["properties"]["event_type"]["enum"]) == set(EXAMPLES)
    openapi = client.get("/openapi.json").json()
    assert "/api/analytics/events" in openapi["paths"]
    assert client.get("/docs").status_code == 200


def test_health_and_readiness(client: TestClient, store: ChdbStore) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["clickhouse"]["status"] == "ok"
    assert checks["freshness"] == {"latest_event": None, "lag_seconds": None}
    assert checks["spool"]["backlog_bytes"] == 0 and "redis" not in checks
    _post(client, body([event("feature_usage")]))
    _wait_count(store, 1)
    freshness = client.get("/health/ready").json()["checks"]["freshness"]
    assert freshness["latest_event"] is not None and 0 <= freshness["lag_seconds"] < 60
    metrics = client.get("/metrics").text
    assert (
        'netra_event_ingestion_events_total{event_type="feature_usage",outcome="accepted"}'
        in metrics
    )


def test_readiness_reports_redis(make_client: Callable[..., TestClient], redis_server: Any) -> None:
    client = make_client(redis_url=redis_server.url)
    assert client.get("/health/ready").json()["checks"]["redis"] == {"status": "ok"}
    down = make_client(redis_url="redis://127.0.0.1:1/0")
    reply = down.get("/health/ready")
    assert reply.json()["checks"]["redis"]["status"] == "degraded"
    assert reply.status_code == 200  # Redis trouble degrades, it does not stop ingestion


def _dumps(value: Any) -> bytes:
    """The stdlib writes what orjson refuses (integers past 64 bits, NaN): fuzz those too."""
    return json.dumps(value).encode()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats(allow_nan=False)
            | st.text(max_size=20),
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(st.text(max_size=12), children, max_size=4)
            ),
            max_leaves=20,
        ).map(_dumps),
        st.builds(
            lambda events: _dumps(
                {"events": events, "context": {"user_id": "fuzz", "session_id": "s"}}
            ),
            st.lists(
                st.fixed_dictionaries(
                    {
                        "event_type": st.sampled_from([*EXAMPLES, "x"]),
                        "properties": st.dictionaries(
                            st.sampled_from(sorted({k for p in EXAMPLES.values() for k in p})),
                            st.none()
                            | st.booleans()
                            | st.integers(-5, 2**70)
                            | st.floats()
                            | st.text(max_size=10),
                            max_size=8,
                        ),
                    },
                    optional={"timestamp": st.text(max_size=30), "event_id": st.text(max_size=40)},
                ),
                max_size=5,
            ),
        ),
    )
)
def test_no_input_produces_a_server_error(client: TestClient, payload: bytes) -> None:
    reply = client.post(URL, content=payload, headers={"content-type": "application/json"})
    assert reply.status_code in (202, 400, 413)
    if reply.status_code == 202:
        data = reply.json()
        assert data["accepted"] + len(data["rejected"]) == len(json.loads(payload)["events"])


def _counted(metrics: str, event_type: str, outcome: str) -> float:
    name = f'netra_event_ingestion_events_total{{event_type="{event_type}",outcome="{outcome}"}}'
    line = next((li for li in metrics.splitlines() if li.startswith(name + " ")), None)
    return float(line.split()[1]) if line else 0.0


def test_events_are_counted_by_type_and_outcome_one_each(client: TestClient) -> None:
    before = client.get("/metrics").text
    invalid = {"event_type": "feature_usage", "properties": {"action": "open"}}
    reply = _post(client, body([event("feature_usage"), event("feature_usage"),
                                event("chat_interaction"), invalid]))  # fmt: skip
    assert reply.status_code == 202
    after = client.get("/metrics").text
    for event_type, outcome, n in [("feature_usage", "accepted", 2),
                                   ("chat_interaction", "accepted", 1),
                                   ("feature_usage", "invalid_properties", 1)]:  # fmt: skip
        assert _counted(after, event_type, outcome) - _counted(before, event_type, outcome) == n
