"""The spec's metrics at /metrics (real service in process, real chDB, real Redis): every name
is exported and moves when events flow and when a report and a panel run; and the multiprocess
mode sums what several processes wrote."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from netra_analytics import metrics
from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import body, event
from tests.support.processes import wait_until

URL = "/api/analytics/events"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

# The contract's names (CONTRACTS-17-18.md), as exposed (histograms by their _count).
SPEC_NAMES = {
    "netra_event_ingestion_events_total",
    "netra_event_ingestion_rate",
    "netra_processing_latency_seconds_count",
    "netra_query_performance_seconds_count",
    "netra_storage_usage_bytes",
    "netra_api_requests_total",
    "netra_api_uptime_seconds",
    "netra_api_availability_ratio",
    "netra_spool_backlog_bytes",
    "netra_batch_events_count",
    "netra_batch_write_seconds_count",
    "netra_prompt_worker_lag_seconds",
    "netra_health_status",
    "netra_data_freshness_seconds",
    "netra_tag_heartbeat_age_seconds",
}


def scrape(client: TestClient) -> Samples:
    reply = client.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, /, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _post(client: TestClient, payload: Any) -> Any:
    headers = {"content-type": "application/json"}
    return client.post(URL, content=orjson.dumps(payload), headers=headers)


def _stored(store: ChdbStore) -> int:
    return int(store.query_rows("SELECT count() AS n FROM analytics.frontend_events")[0]["n"])


def test_every_spec_metric_is_exported_and_moves_with_events_reports_and_panels(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    client = make_client(
        event_batch_size=1, event_flush_interval_ms=20, max_events_per_user_per_minute=5
    )
    before = scrape(client)
    ten_seconds_ago = (datetime.now(UTC) - timedelta(seconds=10)).isoformat()
    old = [event("feature_usage", timestamp=None) | {"timestamp": ten_seconds_ago}
           for _ in range(3)]  # fmt: skip
    bad = event("chat_interaction") | {"properties": {"thread_id": "t"}}  # missing fields
    assert _post(client, body([*old, bad])).status_code == 202
    reply = _post(client, body([event("feature_usage") for _ in range(4)]))
    assert reply.json()["accepted"] == 2  # 3 + 2 reach the limit of 5; 2 rate limited
    assert (
        client.post(
            "/api/analytics/tag/heartbeat", params={"container": "GTM-OBS1", "version": "1.0.0"}
        ).status_code
        == 204
    )
    wait_until(lambda: _stored(store) == 5, timeout=20)
    assert client.get("/api/analytics/reports/engagement").status_code == 200
    assert client.get("/api/analytics/panels/active_users").status_code == 200
    assert client.get("/api/analytics/panels/no-such-panel").status_code == 404
    assert client.get("/health/ready").status_code == 200  # refreshes the store's gauges
    wait_until(lambda: value(scrape(client), "netra_event_ingestion_rate", outcome="accepted"), 10)
    after = scrape(client)

    exported = {name for name, _ in after}
    assert exported >= SPEC_NAMES, SPEC_NAMES - exported

    def moved(name: str, /, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ingested = "netra_event_ingestion_events_total"
    assert moved(ingested, event_type="feature_usage", outcome="accepted") == 5
    assert moved(ingested, event_type="feature_usage", outcome="rate_limited") == 2
    assert moved(ingested, event_type="chat_interaction", outcome="invalid_properties") == 1
    # 5 accepted within the last minute: 5 / 60 s at least (the window is the process's age
    # while it is younger than a minute, so more).
    assert value(after, "netra_event_ingestion_rate", outcome="accepted") >= 5 / 60

    latency = "netra_processing_latency_seconds"
    assert moved(f"{latency}_count", since="capture") == 5
    assert moved(f"{latency}_count", since="receipt") >= 2  # one per request
    # From capture: the three events stamped 10 s ago took over 5 s; receipt to store not.
    assert moved(f"{latency}_bucket", since="capture", le="5.0") == 2
    assert moved(f"{latency}_bucket", since="receipt", le="5.0") == moved(
        f"{latency}_count", since="receipt"
    )

    query = "netra_query_performance_seconds_count"
    assert moved(query, kind="report", name="engagement") == 1
    assert moved(query, kind="panel", name="active_users") == 1
    assert not [labels for name, labels in after
                if name == query and ("name", "no-such-panel") in labels]  # fmt: skip

    usage = "netra_storage_usage_bytes"
    assert value(after, usage, component="clickhouse", table="frontend_events") > 0
    assert value(after, usage, component="spool", table="") > 0

    requests = "netra_api_requests_total"
    assert moved(requests, route=URL, status_class="2xx") == 2
    assert moved(requests, route="/api/analytics/panels/{panel_id}", status_class="4xx") == 1
    assert value(after, "netra_api_uptime_seconds") > 0
    assert value(after, "netra_api_availability_ratio") == 1.0

    assert moved("netra_batch_events_count") >= 1 and moved("netra_batch_events_sum") >= 5
    assert moved("netra_batch_write_seconds_count") >= 1
    # Every accepted request waited for a durable spool write; appends close together share one.
    assert (
        1
        <= moved("netra_spool_fsync_seconds_count")
        <= moved(requests, route=URL, status_class="2xx")
    )
    assert value(after, "netra_spool_backlog_bytes") == 0
    assert value(after, "netra_prompt_worker_lag_seconds") >= 0
    assert value(after, "netra_health_status", check="clickhouse") == 0
    assert value(after, "netra_health_status", check="freshness") == 0
    assert 0 < value(after, "netra_data_freshness_seconds") < 60
    assert 0 <= value(after, "netra_tag_heartbeat_age_seconds", container="GTM-OBS1") < 60


def test_storage_usage_reports_redis_used_memory(
    make_client: Callable[..., TestClient], redis_server: Any
) -> None:
    client = make_client(redis_url=redis_server.url)
    assert client.get("/health/ready").json()["health_checks"]["redis"] == "ok"
    used = value(scrape(client), "netra_storage_usage_bytes", component="redis", table="")
    assert used > 100_000  # an empty redis-server uses about a megabyte


def test_the_availability_ratio_counts_server_errors_over_five_minutes() -> None:
    now = [1000.0]
    window = metrics.Availability(clock=lambda: now[0])
    assert window.ratio() == 1.0  # idle
    for _ in range(3):
        window.record(False)
    window.record(True)
    assert window.ratio() == 0.75
    now[0] += 299  # still within the 5 minutes (its 10 s buckets)
    window.record(False)
    assert window.ratio() == 0.8
    now[0] += 10  # the first bucket has left the window
    assert window.ratio() == 1.0


def test_the_ingestion_rate_is_over_the_last_minute() -> None:
    now = [0.0]
    rate = metrics.IngestionRate(clock=lambda: now[0])
    counter = metrics.EVENTS_RECEIVED.labels("feature_usage", "rate-test")
    rate.sample()
    for _ in range(60):
        now[0] += 1
        counter.inc(2)
        rate.sample()
    assert rate.sample()["rate-test"] == pytest.approx(2.0)
    for _ in range(30):  # a quiet half minute halves it
        now[0] += 1
        rate.sample()
    assert rate.sample()["rate-test"] == pytest.approx(1.0)


WRITER = """
import sys
from netra_analytics import metrics
metrics.EVENTS_RECEIVED.labels("feature_usage", "accepted").inc(int(sys.argv[1]))
metrics.SPOOL_BACKLOG.set(int(sys.argv[2]))
metrics.API_AVAILABILITY.set(float(sys.argv[3]))
"""


def test_multiprocess_mode_sums_every_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes write their values with PROMETHEUS_MULTIPROC_DIR set; one scrape (the
    handler's `exposition`) combines them: counters and spool backlogs summed, availability
    the lowest."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "PATH": ""}
    for args in (["3", "100", "1.0"], ["4", "250", "0.5"]):
        script = textwrap.dedent(WRITER)
        subprocess.run([sys.executable, "-c", script, *args], env=env, check=True, timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    text, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    ingested = value(samples, "netra_event_ingestion_events_total",
                     event_type="feature_usage", outcome="accepted")  # fmt: skip
    assert ingested == 7
    assert value(samples, "netra_spool_backlog_bytes") == 350
    assert value(samples, "netra_api_availability_ratio") == 0.5


BOUNDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
amounts = st.lists(
    st.one_of(
        st.sampled_from([0.0, *BOUNDS, 10.5]),  # on a bound, and beyond the last (+Inf only)
        st.floats(min_value=0, max_value=100, allow_nan=False),
    ),
    max_size=300,
)


@given(amounts)
def test_observe_many_equals_observe_one_by_one(values: list[float]) -> None:
    """The writer's bulk observation exposes what `observe` per amount would: every bucket
    and the count exactly, the sum up to the order of addition."""
    from prometheus_client import CollectorRegistry, Histogram

    one, bulk = CollectorRegistry(), CollectorRegistry()
    expected = Histogram("latency_seconds", "x", ["since"], buckets=BOUNDS, registry=one)
    child = expected.labels("receipt")
    for value in values:
        child.observe(value)
    observed = Histogram("latency_seconds", "x", ["since"], buckets=BOUNDS, registry=bulk)
    metrics.observe_many(observed.labels("receipt"), values)

    def samples(registry: Any) -> dict[tuple[str, str], float]:
        return {
            (s.name, s.labels.get("le", "")): s.value
            for family in registry.collect()
            for s in family.samples
            if not s.name.endswith("_created")
        }

    want, got = samples(one), samples(bulk)
    assert got.keys() == want.keys()
    for key, value in want.items():
        if key[0].endswith("_sum"):
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-9)
        else:
            assert got[key] == value, key
