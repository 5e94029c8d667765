"""A store filled once per module with generated traffic, and a client of the service over it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from fastapi.testclient import TestClient

from netra_analytics.app import create_app
from netra_analytics.config import Settings
from netra_analytics.store.chdb_backend import ChdbStore
from tests.conftest import DATA_TABLES
from tests.dashboards.generate import Traffic, generate
from tests.factories import BROWSER_USER_AGENT
from tests.support.processes import wait_until

SEED = 14
AGE_DAYS = 40  # ANALYTICS_MAX_EVENT_AGE_DAYS: the generated weeks go through the events endpoint


@dataclass
class Filled:
    client: TestClient
    traffic: Traffic
    now: datetime  # the generated traffic's `now` (a whole minute)


def post_all(client: TestClient, traffic: Traffic) -> None:
    for body in traffic.bodies():
        reply = client.post(
            "/api/analytics/events",
            content=orjson.dumps(body),
            headers={"content-type": "application/json", "user-agent": BROWSER_USER_AGENT},
        )
        assert reply.status_code == 202 and not reply.json()["rejected"], reply.text


def live_traffic(now: datetime) -> Traffic:
    """A few events of right now, for the live panels (generated traffic stops 30 min ago)."""
    recent = generate(SEED + 1, users=6, days=1, now=now + timedelta(minutes=40))
    for request in recent.requests:
        for event in request.events:
            event["timestamp"] = (now - timedelta(seconds=5)).isoformat()
    return recent


def settled(store: ChdbStore, traffic: Traffic) -> bool:
    events = traffic.events()
    prompts = sum(1 for _, e in events if e["properties"].get("message_type") == "user_prompt")
    [row] = store.query_rows(
        "SELECT (SELECT count() FROM analytics.frontend_events) AS events, "
        "(SELECT count() FROM analytics.prompt_analytics FINAL) AS prompts"
    )
    return bool(row["events"] == len(events) and row["prompts"] == prompts)


@pytest.fixture(scope="module")
def filled(chdb_store: ChdbStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    for row in chdb_store.query_rows(DATA_TABLES):
        chdb_store.execute(f"TRUNCATE TABLE analytics.{row['name']}")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    traffic = generate(SEED, now=now)
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("dashboards") / "data",
        ip_hash_secret="test-secret-0123456789",
        funnel_walk_days=0,
        event_batch_size=500,
        event_flush_interval_ms=50,
        max_event_age_days=AGE_DAYS,
    )
    with TestClient(create_app(settings, store=chdb_store)) as client:
        post_all(client, traffic)
        recent = live_traffic(now)
        post_all(client, recent)
        everything = Traffic(traffic.requests + recent.requests)
        wait_until(lambda: settled(chdb_store, everything), timeout=60)
        yield Filled(client, everything, now)
