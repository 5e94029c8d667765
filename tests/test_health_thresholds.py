"""Health thresholds: /health/ready says ok, degraded or failing per check and overall (503
only when failing), and the same levels are the `netra_health_status{check}` gauges. Real
service in process over the real chDB; the store outage on real processes (slow)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from netra_analytics.config import Settings
from netra_analytics.errors import ConfigError
from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import BROWSER_USER_AGENT, body, event
from tests.support.hanging import HangingProxy
from tests.support.processes import ChdbHttpServer, ServiceProcess, wait_until

URL = "/api/analytics/events"


def _post(client: TestClient, payload: Any) -> Any:
    headers = {"content-type": "application/json"}
    return client.post(URL, content=orjson.dumps(payload), headers=headers)


def _stored(store: ChdbStore) -> int:
    return int(store.query_rows("SELECT count() AS n FROM analytics.frontend_events")[0]["n"])


def _gauge(text: str, check: str) -> float:
    found = re.search(rf'^netra_health_status{{check="{check}"}} ([0-9.]+)$', text, re.MULTILINE)
    assert found, f"no health gauge for {check}"
    return float(found.group(1))


def _minutes_ago(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


@pytest.mark.parametrize(
    ("failing_minutes", "health", "status"), [(60.0, "degraded", 200), (0.1, "failing", 503)]
)
def test_stale_data_while_events_arrive_is_degraded_then_failing(
    make_client: Callable[..., TestClient],
    store: ChdbStore,
    failing_minutes: float,
    health: str,
    status: int,
) -> None:
    """Events keep arriving, but the newest stored one is 30 minutes old (they all come late
    from browsers' queues): once that has lasted the threshold (3 s here; 6 s to failing),
    the data is stale."""
    client = make_client(
        event_batch_size=1, event_flush_interval_ms=20,
        health_freshness_minutes=0.05, health_freshness_failing_minutes=failing_minutes,
    )  # fmt: skip
    fresh = client.get("/health/ready").json()
    assert fresh["health_checks"]["freshness"] == "ok"  # nothing stored, nothing arriving
    levels = []
    started = time.monotonic()
    while time.monotonic() - started < (8.0 if health == "failing" else 4.5):
        old = event("feature_usage") | {"timestamp": _minutes_ago(30)}
        assert _post(client, body([old])).status_code == 202
        levels.append(client.get("/health/ready").json()["health_checks"]["freshness"])
        time.sleep(0.25)
    assert levels[0] == "ok"  # not stale before events have arrived for 3 s
    reply = client.get("/health/ready")
    assert reply.status_code == status
    ready = reply.json()
    assert ready["health_checks"]["freshness"] == health and ready["health"] == health
    assert ready["status"] == ("ready" if status == 200 else "not_ready")
    assert 29 * 60 < ready["checks"]["freshness"]["lag_seconds"] < 31 * 60
    metrics = client.get("/metrics").text
    assert _gauge(metrics, "freshness") == {"degraded": 1, "failing": 2}[health]
    assert _gauge(metrics, "clickhouse") == 0
    time.sleep(3.5)  # events stop arriving: a quiet site is not stale
    assert client.get("/health/ready").json()["health_checks"]["freshness"] == "ok"


def test_old_data_without_arriving_events_is_not_stale(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    """A quiet site is not a fault: history imported an hour ago, no browser event since."""
    client = make_client(
        event_batch_size=1, event_flush_interval_ms=20,
        health_freshness_minutes=0.05, health_freshness_failing_minutes=0.1,
    )  # fmt: skip
    imported = event("feature_usage") | {"timestamp": _minutes_ago(60)}
    reply = client.post(
        "/api/analytics/import", content=orjson.dumps(body([imported])),
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert reply.status_code == 202 and reply.json()["accepted"] == 1
    wait_until(lambda: _stored(store) == 1, timeout=20)
    time.sleep(6.5)  # past both thresholds
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["health_checks"]["freshness"] == "ok"
    assert ready.json()["checks"]["freshness"]["lag_seconds"] > 59 * 60


def test_a_backed_up_spool_is_degraded_then_failing(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    """The writer waits an hour to flush, so the backlog grows: over 2 % of a 1 MiB cap is
    degraded, over 4 % failing (503), and ingestion still accepts while there is room."""
    client = make_client(
        event_batch_size=100_000, event_flush_interval_ms=3_600_000, spool_max_bytes=1 << 20,
        health_spool_degraded_fraction=0.02, health_spool_failing_fraction=0.04,
    )  # fmt: skip
    levels = []
    for _ in range(40):
        assert (
            _post(client, body([event("chat_interaction") for _ in range(10)])).status_code == 202
        )
        reply = client.get("/health/ready")
        spool = reply.json()["checks"]["spool"]
        level = reply.json()["health_checks"]["spool"]
        share = spool["backlog_bytes"] / spool["max_bytes"]
        expected = "failing" if share >= 0.04 else "degraded" if share >= 0.02 else "ok"
        assert level == expected, (share, level)
        assert reply.status_code == (503 if level == "failing" else 200)
        levels.append(level)
        if level == "failing":
            assert spool["status"] == "full" and reply.json()["status"] == "not_ready"
            assert _gauge(client.get("/metrics").text, "spool") == 2
            break
    assert levels[0] == "ok" and "degraded" in levels and levels[-1] == "failing"


def test_a_stale_tag_heartbeat_is_degraded_never_failing(
    make_client: Callable[..., TestClient],
) -> None:
    now = [1_795_000_000.0]
    client = make_client(clock=lambda: now[0], health_tag_heartbeat_minutes=30.0)
    heartbeat = "/api/analytics/tag/heartbeat"
    for container in ("GTM-OLD1", "GTM-NEW1"):
        reply = client.post(heartbeat, params={"container": container, "version": "1.0.0"})
        assert reply.status_code == 204
        now[0] += 20 * 60
    # GTM-OLD1 fired 40 minutes ago, GTM-NEW1 20 minutes ago.
    reply = client.get("/health/ready")
    assert reply.status_code == 200
    assert reply.json()["health_checks"]["tag_heartbeat"] == "degraded"
    assert reply.json()["checks"]["tag_heartbeat"]["stale_containers"] == ["GTM-OLD1"]
    metrics = client.get("/metrics").text
    assert 'netra_tag_heartbeat_age_seconds{container="GTM-OLD1"} 2400.0' in metrics
    assert 'netra_tag_heartbeat_age_seconds{container="GTM-NEW1"} 1200.0' in metrics
    assert _gauge(metrics, "tag_heartbeat") == 1
    now[0] += 24 * 3600  # a day without heartbeats: still only degraded
    reply = client.get("/health/ready")
    assert reply.status_code == 200 and reply.json()["health"] == "degraded"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ANALYTICS_HEALTH_FRESHNESS_FAILING_MINUTES", "5"),  # under the degraded 15
        ("ANALYTICS_HEALTH_SPOOL_FAILING_FRACTION", "0.3"),  # under the degraded 0.5
        ("ANALYTICS_HEALTH_SPOOL_DEGRADED_FRACTION", "1.5"),
        ("ANALYTICS_HEALTH_WRITER_FAILURES", "0"),
        ("ANALYTICS_ACCESS_LOG", "sometimes"),
    ],
)
def test_bad_thresholds_stop_start_up_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert variable in str(caught.value)


def test_threshold_settings_are_read() -> None:
    settings = Settings.from_env(
        {"ANALYTICS_HEALTH_FRESHNESS_MINUTES": "2.5", "ANALYTICS_HEALTH_WRITER_FAILURES": "7",
         "ANALYTICS_ACCESS_LOG": "off"}
    )  # fmt: skip
    assert settings.health_freshness_minutes == 2.5 and settings.health_writer_failures == 7
    assert settings.access_log_per_second == 0
    assert Settings.from_env({"ANALYTICS_ACCESS_LOG": "250"}).access_log_per_second == 250
    assert Settings.from_env({}).access_log_per_second == 0  # off unless asked


@pytest.mark.slow
def test_the_store_down_is_failing_and_a_scrape_still_answers_at_once(tmp_path: Path) -> None:
    """A hung ClickHouse: /health/ready answers 503 within its 2 s bound saying which checks
    fail (clickhouse; the writer degraded after 2 failed inserts), the gauges say the same,
    and /metrics answers at once (it never waits for the store)."""
    clickhouse = ChdbHttpServer(tmp_path / "clickhouse")
    clickhouse.start()
    proxy = HangingProxy(clickhouse.port)
    service = ServiceProcess(
        tmp_path / "data",
        env={"CLICKHOUSE_ANALYTICS_URL": proxy.url, "EVENT_FLUSH_INTERVAL_MS": "50",
             "ANALYTICS_STORE_TIMEOUT_SECONDS": "1", "ANALYTICS_SHUTDOWN_SECONDS": "4",
             "ANALYTICS_HEALTH_WRITER_FAILURES": "2"},
    )  # fmt: skip
    service.start()
    try:
        assert service.ready()["health"] == "ok"
        proxy.hang()
        with httpx.Client(timeout=10, headers={"user-agent": BROWSER_USER_AGENT}) as client:
            for _ in range(3):
                reply = client.post(f"{service.url}{URL}", json=body([event("feature_usage")]))
                assert reply.status_code == 202  # ingestion needs the disk only

        def failing() -> dict[str, Any] | None:
            reply = httpx.get(f"{service.url}/health/ready", timeout=10)
            ready: dict[str, Any] = reply.json()
            levels = ready["health_checks"]
            done = levels["clickhouse"] == "failing" and levels["writer"] == "degraded"
            return ready if reply.status_code == 503 and done else None

        ready = wait_until(failing, timeout=30)
        assert ready["status"] == "not_ready" and ready["health"] == "failing"
        assert ready["checks"]["writer"]["consecutive_failures"] >= 2
        started = time.perf_counter()
        metrics = httpx.get(f"{service.url}/metrics", timeout=5)
        assert time.perf_counter() - started < 1.0
        assert _gauge(metrics.text, "clickhouse") == 2 and _gauge(metrics.text, "writer") == 1
    finally:
        proxy.resume()
        service.stop()
        proxy.close()
        clickhouse.kill()
