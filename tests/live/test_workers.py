"""Several real service processes sharing one Redis, and Redis going away under load."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from tests.factories import BROWSER_USER_AGENT, body, event
from tests.support.load import Load
from tests.support.processes import (
    ChdbHttpServer,
    RedisServer,
    ServiceProcess,
    cli_query,
    wait_until,
)

pytestmark = pytest.mark.slow


def test_two_workers_share_one_limit(
    tmp_path: Path, redis_server: RedisServer, redis_db: object
) -> None:
    clickhouse = ChdbHttpServer(tmp_path / "clickhouse")
    clickhouse.start()
    env = {"REDIS_ANALYTICS_URL": redis_server.url, "CLICKHOUSE_ANALYTICS_URL": clickhouse.url}
    workers = [ServiceProcess(tmp_path / f"worker{i}", env=env) for i in range(2)]
    try:
        for worker in workers:
            worker.start()
        accepted = 0
        with httpx.Client(timeout=10, headers={"user-agent": BROWSER_USER_AGENT}) as client:
            for i in range(120):  # 1,200 events for one user, alternating between the workers
                payload = body([event("feature_usage") for _ in range(10)], user_id="shared-user")
                reply = client.post(f"{workers[i % 2].url}/api/analytics/events",
                                    content=orjson.dumps(payload), headers={"content-type": "application/json"})  # fmt: skip
                assert reply.status_code in (202, 429)
                accepted += reply.json()["accepted"]
            other = client.post(f"{workers[1].url}/api/analytics/events",
                                content=orjson.dumps(body([event("feature_usage")], user_id="other")),
                                headers={"content-type": "application/json"})  # fmt: skip
        assert accepted == 1000
        assert other.status_code == 202 and other.json()["accepted"] == 1
    finally:
        for worker in workers:
            worker.kill()
        clickhouse.kill()


def test_redis_dying_under_load_loses_nothing_and_the_service_recovers(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path)
    redis.start()
    data_dir = tmp_path / "data"
    service = ServiceProcess(
        data_dir, env={"REDIS_ANALYTICS_URL": redis.url, "EVENT_FLUSH_INTERVAL_MS": "100"}
    )
    service.start()
    load = Load(service.url, threads=3, batch=20, seed=21)
    load.start()
    try:
        wait_until(lambda: len(load.acked) >= 1000, timeout=60)
        redis.kill()
        acked_at_kill = len(load.acked)
        wait_until(lambda: len(load.acked) >= acked_at_kill + 2000, timeout=60)  # ingestion goes on
        # thousands of requests met the outage; it is logged once
        assert sum("Redis unavailable" in line for line in service.log().splitlines()) == 1
        ready = service.ready()
        assert ready["checks"]["redis"]["status"] == "degraded"
        assert ready["status"] == "ready"
        engagement = httpx.get(
            f"{service.url}/api/analytics/reports/engagement",
            timeout=5,
            headers=service.admin_headers(),
        ).json()
        assert engagement["source"] == "in-process (Redis unavailable)"
        assert engagement["events_last_5_minutes"] > 0

        redis.start()  # same port, empty
        wait_until(lambda: service.ready()["checks"]["redis"]["status"] == "ok", timeout=30)
        wait_until(
            lambda: (
                httpx.get(
                    f"{service.url}/api/analytics/reports/engagement",
                    timeout=5,
                    headers=service.admin_headers(),
                ).json()["source"]
                == "redis"
            ),
            timeout=30,
        )
        mark = len(load.acked)
        wait_until(lambda: len(load.acked) >= mark + 500, timeout=60)
        live = httpx.get(
            f"{service.url}/api/analytics/reports/engagement",
            timeout=5,
            headers=service.admin_headers(),
        ).json()
        assert live["source"] == "redis" and live["events_last_5_minutes"] > 0
    finally:
        load.stop()
        redis.kill()
    wait_until(lambda: service.ready()["checks"]["spool"]["backlog_bytes"] == 0, timeout=60)
    metrics = httpx.get(f"{service.url}/metrics", timeout=5).text
    assert 'netra_live_state_fallbacks_total{operation="take"}' in metrics
    assert service.stop()
    stored = cli_query(data_dir, "SELECT toString(event_id) FROM analytics.frontend_events").split()
    assert len(stored) == len(set(stored))
    assert load.acked <= set(stored)
    assert "Redis answers again" in service.log()
