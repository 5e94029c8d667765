"""Faults on real processes: a store that dies or hangs while events arrive and health is
probed, a damaged spool, a writer that keeps crashing, a shutdown with a hung store.

What must hold: ingestion answers as fast as before (it needs the disk only), the writer backs
off (failed inserts per minute bounded, whatever the arrival rate), the log stays a few lines,
health answers at once and says what fails, and every acknowledged event is stored exactly once
when the store is back, but for a damaged spool record, which is quarantined and reported.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import signal
import statistics
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from netra_analytics.config import parse_clickhouse_url
from netra_analytics.store.http_backend import HttpStore
from tests.factories import BROWSER_USER_AGENT, body, event
from tests.support.hanging import HangingProxy
from tests.support.load import Load
from tests.support.processes import ChdbHttpServer, ServiceProcess, cli_query, wait_until

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 6.0
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _drained(service: ServiceProcess) -> bool:
    checks = service.ready()["checks"]
    return bool(checks["spool"]["backlog_bytes"] == 0 and checks.get("writer", {}).get("status"))


def _metric(service: ServiceProcess, name: str) -> float:
    text = httpx.get(f"{service.url}/metrics", timeout=5).text
    found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


class Prober:
    """Probes /health/ready in a thread, keeping each reply's status, body and duration."""

    def __init__(self, service: ServiceProcess) -> None:
        self.replies: list[tuple[int, dict[str, Any], float]] = []
        self._url = f"{service.url}/health/ready"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=15) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                reply = client.get(self._url)
                self.replies.append((reply.status_code, reply.json(), time.monotonic() - started))
                self._stop.wait(0.2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(20)


def _ingest_for(
    load: Load, client: httpx.Client, rng: random.Random, seconds: float
) -> tuple[list[int], list[float]]:
    """Send requests one after another for `seconds`: their statuses and durations."""
    statuses, durations = [], []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        statuses.append(load.send_once(client, rng, f"fault-user-{rng.randrange(20)}"))
        durations.append(time.monotonic() - started)
    return statuses, durations


def _report(service: ServiceProcess) -> None:
    """A report request (its query runs in asyncio's default pool); cut short at shutdown."""
    url = f"{service.url}/api/analytics/reports/user-activity"
    params = {"start_date": "2026-11-01", "end_date": "2026-11-02", "granularity": "day"}
    with contextlib.suppress(httpx.HTTPError):
        httpx.get(url, params=params, timeout=30)


def _p99(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.99)]


def _stored_once(url: str, acked: set[str]) -> None:
    store = HttpStore(parse_clickhouse_url(url))
    try:
        rows = store.query_rows("SELECT toString(event_id) AS id FROM analytics.frontend_events")
    finally:
        store.close()
    stored = [row["id"] for row in rows]
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert set(stored) == acked, f"{len(acked - set(stored))} acknowledged events not stored"


@pytest.fixture
def clickhouse(tmp_path: Path) -> Iterator[ChdbHttpServer]:
    server = ChdbHttpServer(tmp_path / "clickhouse")
    server.start()
    yield server
    server.kill()


@pytest.mark.parametrize("fault", ["killed", "hung"])
def test_store_outage_keeps_ingestion_fast_and_the_writer_backing_off(
    tmp_path: Path, clickhouse: ChdbHttpServer, fault: str
) -> None:
    proxy = HangingProxy(clickhouse.port)
    service = ServiceProcess(
        tmp_path / "data",
        env={"CLICKHOUSE_ANALYTICS_URL": proxy.url, "EVENT_FLUSH_INTERVAL_MS": "50",
             "ANALYTICS_STORE_TIMEOUT_SECONDS": "1", "ANALYTICS_SHUTDOWN_SECONDS": "8",
             "MAX_EVENTS_PER_USER_PER_MINUTE": "10000000"},
    )  # fmt: skip
    service.start()
    load = Load(service.url, batch=10, seed=21)
    rng = random.Random(4)
    with httpx.Client(timeout=10, headers={"user-agent": BROWSER_USER_AGENT}) as client:
        statuses, before = _ingest_for(load, client, rng, 1.5)
        assert set(statuses) == {202}
        wait_until(lambda: _drained(service), timeout=30)

        failures_before = _metric(service, "netra_store_write_failures_total")
        log_lines_before = len(service.log().splitlines())
        if fault == "killed":
            clickhouse.kill()
        else:
            proxy.hang()
        prober = Prober(service)
        statuses, during = _ingest_for(load, client, rng, OUTAGE_SECONDS)
        prober.stop()
        print(
            f"{fault}: {len(statuses)} requests, median {statistics.median(during):.4f} s "
            f"(before {statistics.median(before):.4f} s), p99 {_p99(during):.4f} s, "
            f"slowest probe {max(s for _, _, s in prober.replies):.3f} s"
        )
        failures = _metric(service, "netra_store_write_failures_total") - failures_before
        outage_log = service.log().splitlines()[log_lines_before:]

        # Ingestion needs the disk only: every request accepted, as fast as before.
        assert set(statuses) == {202} and len(statuses) >= 50
        assert statistics.median(during) < 3 * statistics.median(before) + 0.05
        assert _p99(during) < 1.0, f"p99 {_p99(during):.3f} s while the store was {fault}"
        # Health answers at once (no probe waits behind a hung one) and says the store fails.
        assert len(prober.replies) >= 10
        assert max(seconds for _, _, seconds in prober.replies) < 3.0
        status, last, _ = prober.replies[-1]
        assert status == 503 and last["checks"]["clickhouse"]["status"] == "error"
        # Backoff holds whatever arrives: 0.2 s doubling, jittered ±20 %, gives at most 6
        # attempts in 6 s (2 spare for timing); before, every append woke the writer (1,754
        # failed inserts in 20 s).
        assert 2 <= failures <= 8, f"{failures} failed inserts in {OUTAGE_SECONDS} s"
        print(f"{fault}: {failures} failed inserts, {len(outage_log)} log lines")
        writes_logged = [line for line in outage_log if "store write" in line]
        assert len(writes_logged) == 1, writes_logged  # once, then once a minute
        assert len(outage_log) <= 4, outage_log

        if fault == "hung":
            # Shutdown is bounded with the store hung, a report query waiting on it too; what
            # is not stored stays in the spool.
            report = threading.Thread(target=_report, args=(service,), daemon=True)
            report.start()
            time.sleep(0.5)
            started = time.monotonic()
            assert service.stop()
            stopped_in = time.monotonic() - started
            print(f"hung: shutdown took {stopped_in:.1f} s")
            assert stopped_in < 8 + 3
            proxy.resume()
            service.start()
            print(f"hung: restarted after {time.monotonic() - started:.1f} s")
        else:
            clickhouse.start()  # same port, same data
            wait_until(lambda: _drained(service), timeout=60)
            assert "store write works again" in service.log()
        wait_until(lambda: _drained(service), timeout=60)
    assert service.stop()
    proxy.close()
    _stored_once(clickhouse.url, load.acked)


def _records(segment: Path) -> list[tuple[int, int]]:
    """(offset, length of payload) of each record of a spool segment."""
    data, records, at = segment.read_bytes(), [], 0
    while at < len(data):
        length, _ = struct.unpack_from("<II", data, at)
        records.append((at, length))
        at += 8 + length
    return records


def _flip(segment: Path, offset: int) -> bytes:
    """Flip one byte of the record at `offset` (in its payload); that record's payload."""
    data = bytearray(segment.read_bytes())
    (length,) = struct.unpack_from("<I", data, offset)
    payload = bytes(data[offset + 8 : offset + 8 + length])
    data[offset + 8 + length // 2] ^= 0x01
    segment.write_bytes(bytes(data))
    return payload


def _send(service: ServiceProcess, load: Load, n: int, prefix: str) -> None:
    rng = random.Random(prefix)
    with httpx.Client(timeout=10, headers={"user-agent": BROWSER_USER_AGENT}) as client:
        for i in range(n):
            assert load.send_once(client, rng, f"{prefix}-{i % 5}") == 202


def _spooled_then_killed(data_dir: Path, requests: int, prefix: str) -> Load:
    """Events acknowledged by a service that writes none of them, then killed (-9): every
    record is still to store at the next start."""
    waiting = ServiceProcess(
        data_dir, env={"EVENT_BATCH_SIZE": "100000", "EVENT_FLUSH_INTERVAL_MS": "3600000"}
    )
    waiting.start()
    load = Load(waiting.url, batch=10, seed=len(prefix))
    _send(waiting, load, requests, prefix)
    waiting.signal(signal.SIGKILL)
    waiting.wait(30)
    return load


def _stored(data_dir: Path) -> list[str]:
    return cli_query(data_dir, "SELECT toString(event_id) FROM analytics.frontend_events").split()


def test_a_damaged_record_mid_segment_is_quarantined_and_the_rest_stored(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    load = _spooled_then_killed(data_dir, 30, "mid")
    [segment] = (data_dir / "spool").glob("*.wal")
    records = _records(segment)
    assert len(records) == 30
    victim = _flip(segment, records[12][0])
    lost = {m.decode() for m in UUID.findall(victim)}
    assert len(lost) == 10

    service = ServiceProcess(data_dir, env={"EVENT_FLUSH_INTERVAL_MS": "50"})
    service.start()
    wait_until(lambda: _drained(service), timeout=30)
    spool = service.ready()["checks"]["spool"]
    assert spool["status"] == "corrupt_records" and spool["quarantined_records"] == 1
    assert service.stop()
    assert "quarantined, the records after it are kept" in service.log()
    [quarantined] = (data_dir / "spool" / "quarantine").glob("*.bad")
    assert (
        quarantined.read_bytes()[8:] != victim and len(quarantined.read_bytes()) == len(victim) + 8
    )
    stored = _stored(data_dir)
    assert len(stored) == len(set(stored)) == 290
    assert set(stored) == load.acked - lost


def test_a_damaged_record_below_the_checkpoint_stops_nothing(tmp_path: Path) -> None:
    """Already stored, but still read by the prompt worker behind the writer (moved back
    here): neither stops, ingestion goes on, and the damage is reported."""
    data_dir = tmp_path / "data"
    service = ServiceProcess(data_dir, env={"EVENT_FLUSH_INTERVAL_MS": "50"})
    service.start()
    load = Load(service.url, batch=10, seed=5)
    _send(service, load, 20, "below")
    wait_until(lambda: _drained(service), timeout=30)
    service.signal(signal.SIGKILL)
    service.wait(30)
    spool_dir = data_dir / "spool"
    [segment] = spool_dir.glob("*.wal")
    records = _records(segment)
    assert int((spool_dir / "checkpoint").read_text()) == segment.stat().st_size
    _flip(segment, records[7][0])
    (spool_dir / "consumer.prompts").write_text("0")  # the prompt worker reads it again

    service.start()
    _send(service, load, 10, "after")
    wait_until(lambda: _drained(service), timeout=30)
    wait_until(lambda: int((spool_dir / "consumer.prompts").read_text()) > records[8][0], 30)
    checks = service.ready()["checks"]
    assert {w["status"] for w in checks["workers"].values()} == {"running"}
    assert checks["spool"]["quarantined_records"] == 1
    assert service.stop()
    stored = _stored(data_dir)
    assert len(stored) == len(set(stored)) and set(stored) == load.acked


def test_a_crashing_writer_is_restarted_reported_and_refuses_ingestion_meanwhile(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    load = _spooled_then_killed(data_dir, 5, "crash")
    # An in-flight batch that ends inside a record: the writer stops on it at every start.
    in_flight = data_dir / "spool" / "in_flight.json"
    in_flight.write_text(json.dumps({"end": 5, "excluded": [], "format": 2}))

    service = ServiceProcess(data_dir, env={"EVENT_FLUSH_INTERVAL_MS": "50"})
    service.start(wait_ready=False)
    events = orjson.dumps(body([event("feature_usage")], user_id="refused"))

    def post() -> httpx.Response:
        return httpx.post(f"{service.url}/api/analytics/events", content=events,
                          headers={"content-type": "application/json",
                                   "user-agent": BROWSER_USER_AGENT}, timeout=10)  # fmt: skip

    refused = wait_until(lambda: (r := post()).status_code == 503 and r, timeout=20)
    assert refused.json()["error"] == "WriterDown"
    assert int(refused.headers["retry-after"]) >= 1
    ready = httpx.get(f"{service.url}/health/ready", timeout=5)
    assert ready.status_code == 503
    writer = ready.json()["checks"]["workers"]["writer"]
    assert writer["status"] == "failing" and writer["restarts"] >= 2
    assert "in-flight batch" in writer["last_crash"]
    assert ready.json()["checks"]["writer"]["status"] == "failing"
    assert _metric(service, 'netra_worker_crashes_total{worker="writer"}') >= 3

    in_flight.unlink()  # the cause goes away: the next restart runs and settles
    wait_until(lambda: post().status_code == 202, timeout=30)
    wait_until(lambda: _drained(service), timeout=30)
    assert service.ready()["checks"]["workers"]["writer"]["status"] == "running"
    assert service.stop()
    assert set(_stored(data_dir)) >= load.acked
    assert service.log().count("Traceback") <= 1  # the traceback once, not per crash
