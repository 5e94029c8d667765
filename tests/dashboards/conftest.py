"""A store filled once per module by the demo generator (`netra-analytics demo`'s events through
the historical import, with an admin key), and a client of the service over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from netra_analytics import demo
from netra_analytics.app import create_app
from netra_analytics.config import Settings
from netra_analytics.store.chdb_backend import ChdbStore
from tests.conftest import DATA_TABLES
from tests.support.processes import wait_until

# Smaller than the demo's defaults (500 people, 30 days) to keep the tests short; the demo's
# default seed, whose people include some on staging in the last week (the filter tests).
SEED, USERS, DAYS = 1, 60, 14
LIVE_SPACING = timedelta(milliseconds=10)

Post = Callable[[str, bytes], tuple[int, dict[str, str], bytes]]


@dataclass
class Filled:
    client: TestClient
    events: list[dict[str, Any]]  # every event imported, in the import's shape (with `context`)
    now: datetime  # when the demo's traffic ends


def live_events(now: datetime) -> list[dict[str, Any]]:
    """A day of a few other demo people, moved to the seconds before `now` in their order (10 ms
    apart), for the live panels: the live state holds the last five minutes, and the demo's
    traffic up to `now` may have nothing in them."""
    whole_day = datetime.combine(now.astimezone(UTC).date(), time.max, UTC)
    day = sorted(
        demo.generate(users=6, days=1, seed=SEED + 1, now=whole_day), key=lambda e: e["timestamp"]
    )
    first = now - timedelta(seconds=5) - LIVE_SPACING * len(day)
    return [
        {**e, "timestamp": (first + LIVE_SPACING * k).isoformat(timespec="milliseconds")}
        for k, e in enumerate(day)
    ]


def import_demo(post: Post, now: datetime) -> list[dict[str, Any]]:
    """Send the demo's traffic (SEED, USERS, DAYS, up to `now`) as `demo.run` does, through
    `post`; every event must be accepted. The events sent."""
    summary = demo.run("http://service", users=USERS, days=DAYS, seed=SEED, now=now,
                       progress=None, post=post)  # fmt: skip
    events = demo.generate(users=USERS, days=DAYS, seed=SEED, now=now)
    assert (summary.accepted, summary.rejected) == (len(events), 0), summary.rejections
    return events


def import_events(post: Post, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Send these events through the import (a request per `demo.BATCH_EVENTS`); every event
    must be accepted. The events sent."""
    for start in range(0, len(events), demo.BATCH_EVENTS):
        body = orjson.dumps({"events": events[start : start + demo.BATCH_EVENTS]})
        status, _, content = post(demo.IMPORT_PATH, body)
        assert status == 202 and not orjson.loads(content)["rejected"], content
    return events


def client_post(client: TestClient) -> Post:
    """`demo.run`'s sender over a test client (which sends the session's admin key)."""

    def post(endpoint: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        reply = client.post(
            demo.IMPORT_PATH, content=body, headers={"content-type": "application/json"}
        )
        return reply.status_code, dict(reply.headers), reply.content

    return post


def settled(store: ChdbStore, events: list[dict[str, Any]]) -> bool:
    prompts = sum(1 for e in events if e["properties"].get("message_type") == "user_prompt")
    [row] = store.query_rows(
        "SELECT (SELECT count() FROM analytics.frontend_events) AS events, "
        "(SELECT count() FROM analytics.prompt_analytics FINAL) AS prompts"
    )
    return bool(row["events"] == len(events) and row["prompts"] == prompts)


@pytest.fixture(scope="module")
def filled(
    chdb_store: ChdbStore,
    tmp_path_factory: pytest.TempPathFactory,
    admin_headers: dict[str, str],
) -> Iterator[Filled]:
    for row in chdb_store.query_rows(DATA_TABLES):
        chdb_store.execute(f"TRUNCATE TABLE analytics.{row['name']}")
    now = datetime.now(UTC)
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("dashboards") / "data",
        ip_hash_secret="test-secret-0123456789",
        funnel_walk_days=0,
        event_batch_size=500,
        event_flush_interval_ms=50,
    )
    with TestClient(create_app(settings, store=chdb_store), headers=admin_headers) as client:
        post = client_post(client)
        events = import_demo(post, now) + import_events(post, live_events(now))
        wait_until(lambda: settled(chdb_store, events), timeout=90)
        yield Filled(client, events, now)
