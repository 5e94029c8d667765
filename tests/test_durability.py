"""The guarantees of the durable batch writer, shown on real server processes.

An event acknowledged with 202 is stored exactly once: after kill -9 during a load, while
ClickHouse is unreachable (and refused with 503 only when the spool is full), and on SIGTERM.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import httpx
import pytest

from netra_analytics.config import parse_clickhouse_url
from netra_analytics.store.http_backend import HttpStore
from tests.factories import BROWSER_USER_AGENT
from tests.support.load import Load
from tests.support.processes import ChdbHttpServer, ServiceProcess, cli_query, wait_until

pytestmark = pytest.mark.slow


def _drained(service: ServiceProcess) -> bool:
    checks = service.ready()["checks"]
    return bool(checks["spool"]["backlog_bytes"] == 0 and "writer" in checks)


def _stored_ids(data_dir: Path) -> list[str]:
    return cli_query(data_dir, "SELECT toString(event_id) FROM analytics.frontend_events").split()


def _summary_total(data_dir: Path) -> int:
    """Events counted by the views; every view must count the same."""
    totals = cli_query(
        data_dir,
        "SELECT (SELECT sum(total_events) FROM analytics.user_analytics_summary), "
        "sumIf(total_events, resolution = 'day'), sumIf(total_events, resolution = 'quarter_hour') "
        "FROM analytics.activity_rollup",
    ).split()
    assert len(set(totals)) == 1, totals
    return int(totals[0])


def test_kill_9_during_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    service = ServiceProcess(
        data_dir, env={"EVENT_BATCH_SIZE": "200", "EVENT_FLUSH_INTERVAL_MS": "50"}
    )
    load = Load(service.url, threads=4, batch=20, seed=7)
    service.start()
    load.start()
    for round_ in range(2):  # the second crash also replays what the first left behind
        wait_until(lambda r=round_: len(load.acked) >= 2000 * (r + 1), timeout=60)
        service.signal(signal.SIGKILL)
        service.wait(30)
        service.start(wait_ready=False)
    load.stop()
    wait_until(lambda: _drained(service), timeout=60)
    assert service.stop()

    stored = _stored_ids(data_dir)
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert load.acked <= set(stored), f"{len(load.acked - set(stored))} acknowledged events lost"
    assert set(stored) <= load.sent
    assert _summary_total(data_dir) == len(stored)
    assert len(load.acked) >= 4000


def test_store_outage_accepts_then_writes_once_and_503_only_when_spool_full(tmp_path: Path) -> None:
    clickhouse = ChdbHttpServer(tmp_path / "clickhouse")
    clickhouse.start()
    service = ServiceProcess(
        tmp_path / "data",
        env={"CLICKHOUSE_ANALYTICS_URL": clickhouse.url, "EVENT_FLUSH_INTERVAL_MS": "50",
             "ANALYTICS_SPOOL_MAX_BYTES": str(1 << 20)},
    )  # fmt: skip
    service.start()
    load = Load(service.url, batch=20, seed=11)
    rng = random.Random(3)
    with httpx.Client(timeout=10, headers={"user-agent": BROWSER_USER_AGENT}) as client:
        for _ in range(30):
            assert load.send_once(client, rng, "before-outage") == 202
        wait_until(lambda: _drained(service), timeout=30)

        clickhouse.kill()
        statuses = [load.send_once(client, rng, f"during-{i}") for i in range(300)]
        accepted_during = statuses.count(202)
        assert accepted_during >= 40, "events must keep being accepted while the store is down"
        assert 503 in statuses, "a full spool must refuse with 503"
        assert statuses.index(503) >= accepted_during  # refused only once full: accepted first
        assert load.last_error is not None
        assert load.last_error["headers"]["retry-after"] == "5"
        assert "spool" in load.last_error["body"]
        ready = client.get(f"{service.url}/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["clickhouse"]["status"] == "error"

        clickhouse.start()  # same port, same data
        wait_until(lambda: _drained(service), timeout=90)
        assert load.send_once(client, rng, "after-outage") == 202
        wait_until(lambda: _drained(service), timeout=30)
    assert service.stop()

    store = HttpStore(parse_clickhouse_url(clickhouse.url))
    stored = [
        r["id"]
        for r in store.query_rows("SELECT toString(event_id) AS id FROM analytics.frontend_events")
    ]
    [summary] = store.query_rows(
        "SELECT sum(total_events) AS n FROM analytics.user_analytics_summary"
    )
    store.close()
    clickhouse.kill()
    assert len(stored) == len(set(stored))
    assert (
        set(stored) == load.acked
    )  # nothing sent was half-accepted: every batch is 202 or refused whole
    assert summary["n"] == len(stored)


def test_sigterm_flushes_what_is_waiting(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # Nothing would flush by itself for an hour: only the shutdown can write these events.
    service = ServiceProcess(
        data_dir, env={"EVENT_BATCH_SIZE": "100000", "EVENT_FLUSH_INTERVAL_MS": "3600000"}
    )
    service.start()
    load = Load(service.url, batch=25, seed=5)
    rng = random.Random(9)
    with httpx.Client(timeout=10, headers={"user-agent": BROWSER_USER_AGENT}) as client:
        for _ in range(40):
            assert load.send_once(client, rng, "u") == 202
    assert service.ready()["checks"]["writer"]["events_written"] == 0
    assert service.stop()
    assert sorted(_stored_ids(data_dir)) == sorted(load.acked)
    assert len(load.acked) == 1000
    assert '"msg":"writer stopped","events_written":1000' in service.log()
