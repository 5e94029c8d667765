"""A bounded soak (issue 13): ever-new visitors, prompts and report parameters for ~25 s per
live-state mode, with a clock that runs 5 s per request so that every time bound (the
minute of a rate window, the hour of a session, the half hour of hot prompts, the minute of a
cached report) is passed many times over. The structures stay within their bounds and the
process's RSS stays flat after the warm-up. The service runs in a process of its own, started
for the test.

The store is a ClickHouse HTTP endpoint in its own process (chDB behind `chdb_http.py`):
with embedded chDB the process grew ~37 MB per 1,000 visitors in this loop, outside the
service's structures (chDB's native memory), which would hide what this test is about.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from netra_analytics.app import create_app
from netra_analytics.auth.keys import ADMIN, create_key
from netra_analytics.config import Settings, parse_clickhouse_url
from netra_analytics.live.base import RATE_WINDOW_MS, SESSION_TTL
from netra_analytics.service import Service
from tests.factories import EXAMPLES
from tests.support.processes import ChdbHttpServer

pytestmark = pytest.mark.slow

SECONDS = 25.0  # per mode
WARM_UP = 0.4  # of SECONDS
STEP = 5.0  # clock seconds per request
TRACKED = 100
MAX_TEXTS = 1000
CACHE_BYTES = 1 << 20
THREAD_BYTES = 1 << 20  # the prompt analysis's threads: reached after ~500 visitors


class FastClock:
    def __init__(self) -> None:
        self.now = time.time() - 30 * 86_400  # a month back: reports see it as the past

    def __call__(self) -> float:
        return self.now


def _rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    [line] = [x for x in status.splitlines() if x.startswith("VmRSS:")]
    return int(line.split()[1]) / 1024


def _visit(i: int, at: float) -> bytes:
    stamp = datetime.fromtimestamp(at, UTC).isoformat()
    prompt = {**EXAMPLES["chat_interaction"], "thread_id": f"t{i}", "message_id": f"m{i}",
              "prompt_text": f"question {i}: how much would plan {i * 7919} cost us per month"}  # fmt: skip
    events = [
        {"event_type": "chat_interaction", "timestamp": stamp, "properties": prompt},
        {"event_type": "feature_usage", "timestamp": stamp,
         "properties": EXAMPLES["feature_usage"]},
    ]  # fmt: skip
    context = {"user_id": f"visitor-{i}", "session_id": f"session-{i}", "page_path": f"/p/{i}"}
    return orjson.dumps({"events": events, "context": context})


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbHttpServer]:
    server = ChdbHttpServer(tmp_path_factory.mktemp("soak") / "clickhouse")
    server.start()
    yield server
    server.kill()


@pytest.fixture(params=["in-process", "redis"])
def live(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "in-process":
        return {}
    request.getfixturevalue("redis_db")
    return {"redis_url": request.getfixturevalue("redis_server").url}


def test_memory_is_flat_under_ever_new_visitors_prompts_and_reports(
    clickhouse: ChdbHttpServer, live: dict[str, Any], tmp_path: Path
) -> None:
    # In a fresh process: the RSS of one that ran the suite's other tests (~3.9 GB in CI)
    # moves by more than this test is about, with what those tests left behind.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        soaked = pool.submit(_soak, clickhouse.url, live, tmp_path / "data").result(SECONDS * 4)
    visitors, samples, local = soaked["visitors"], soaked["samples"], soaked["local"]
    after_warm_up = [rss for at, rss in samples if at >= WARM_UP * SECONDS]
    growth = max(after_warm_up[-3:]) - after_warm_up[0]
    print(f"\n{visitors} visitors, {live or 'in-process'}: RSS {after_warm_up[0]:.0f} -> "
          f"{after_warm_up[-1]:.0f} MB after warm-up; {local}; "
          f"prompt threads {soaked['threads']}")  # fmt: skip
    assert visitors * STEP > SESSION_TTL  # the hour of a session passed
    assert growth < 10, samples
    # Bounded whatever the number of visitors: a minute of windows, an hour of sessions...
    assert local["windows"] <= RATE_WINDOW_MS / 1000 / STEP + 1
    assert local["sessions"] <= (SESSION_TTL / STEP + 1 if not live else 0)
    assert local["hot_prompts"] < 2 * TRACKED * 7
    assert local["cache_bytes"] <= CACHE_BYTES
    assert soaked["texts"] <= MAX_TEXTS
    # Read while the analysis may be mid-call: over the budget by at most one call's prompts.
    threads = soaked["threads"]
    assert 0 < threads["bytes"] <= 2 * THREAD_BYTES, threads
    assert threads["threads"] < visitors / 2  # its bound was reached: most visitors' threads left


def _soak(clickhouse_url: str, live: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """The soak, in the process it is measured in: what it saw, for the test to judge."""
    clock = FastClock()
    settings = Settings(
        data_dir=data_dir, ip_hash_secret="test-secret-0123456789", funnel_walk_days=0,
        clickhouse=parse_clickhouse_url(clickhouse_url), hot_prompts_tracked=TRACKED,
        similarity_max_prompts=MAX_TEXTS, report_cache_max_bytes=CACHE_BYTES,
        prompt_thread_cache_bytes=THREAD_BYTES,
        max_events_per_user_per_minute=10, **live,
    )  # fmt: skip
    with TestClient(create_app(settings, clock=clock)) as client:
        service: Service = client.app.state.service  # type: ignore[attr-defined]
        assert service.store is not None
        key = create_key(service.store, f"soak-{uuid.uuid4().hex[:8]}", ADMIN)  # for the reports
        client.headers["authorization"] = f"Bearer {key}"
        headers = {"content-type": "application/json"}
        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        i = 0
        while (elapsed := time.monotonic() - started) < SECONDS:
            clock.now += STEP
            reply = client.post("/api/analytics/events", content=_visit(i, clock.now),
                                headers=headers)  # fmt: skip
            assert reply.status_code == 202, reply.text
            if i % 20 == 0:  # a long-range report over ever-new dates: a cache miss, then kept
                first = datetime.fromtimestamp(clock.now, UTC).date() - timedelta(days=30 + i % 997)
                report = client.get("/api/analytics/reports/user-activity", params={
                    "start_date": str(first), "end_date": str(first + timedelta(days=9))})  # fmt: skip
                assert report.status_code == 200
                assert client.get("/api/analytics/reports/hot-prompts?limit=5").status_code == 200
            if i % 50 == 0:
                samples.append((elapsed, _rss_mb()))
            i += 1
        assert service.prompts is not None and service.prompts.analyser is not None
        return {"visitors": i, "samples": samples, "local": service.live.local.sizes(),
                "threads": service.prompts.analyser.sizes(), "texts": len(service.prompts.index)}  # fmt: skip
