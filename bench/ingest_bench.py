"""Sustained ingest, beside the two ceilings it sits between, measured in one run.

1. bare HTTP: a Starlette route on uvicorn (httptools, uvloop) that reads the body and replies
   202: what the HTTP stack alone can do on this machine.
2. service: `netra-analytics serve` (embedded chDB, default batch settings), batches of 20
   events for `--seconds` (default 60), then drained; every acknowledged event must be stored
   exactly once.
3. raw chDB insert: the same JSON rows inserted straight into a fresh `frontend_events`, in
   batches of the size the service's writer used, and in batches of 5,000.

The load is wrk (`apt-get install wrk`), 2 threads and 50 connections, on the same 2-core
machine as the server, so every number includes the client's share of the CPU. Each phase runs
`--repeats` times (default 3) and the median is reported. Results go to stdout and, as JSON, to
`bench/results/ingest.json`.

    .venv/bin/python -m bench.ingest_bench [--seconds 60] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    BIN,
    EVENTS_PER_REQUEST,
    REPO,
    BenchService,
    free_port,
    median,
    request_body,
    run_wrk,
    save_results,
    wait_port,
)

BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def events(request):
    await request.body()
    return Response(b'{"accepted":20,"rejected":[]}', status_code=202, media_type="application/json")

app = Starlette(routes=[Route("/api/analytics/events", events, methods=["POST"])])
"""


def bench_bare(body_file: Path, seconds: int, workdir: Path) -> dict[str, float]:
    (workdir / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "uvicorn"), "bare_app:app", "--port", str(port), "--loop", "uvloop",
         "--http", "httptools", "--no-access-log", "--log-level", "warning"],
        cwd=workdir,
    )  # fmt: skip
    try:
        wait_port(port)
        return run_wrk(f"http://127.0.0.1:{port}/api/analytics/events", body_file, seconds)
    finally:
        server.terminate()
        server.wait(30)


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def bench_service(body_file: Path, seconds: int, workdir: Path) -> dict[str, Any]:
    data_dir = workdir / "service-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    service = BenchService(data_dir)
    url, env = service.url, service.env
    try:
        result: dict[str, Any] = run_wrk(f"{url}/api/analytics/events", body_file, seconds)
        drain_started = time.monotonic()
        while httpx.get(f"{url}/health/ready", timeout=10).json()["checks"]["spool"][
            "backlog_bytes"
        ]:
            time.sleep(0.2)
        result["drain_after_load_s"] = round(time.monotonic() - drain_started, 2)
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        batches = _metric(metrics, "netra_batch_write_seconds_count")
        result["batches"] = int(batches)
        result["mean_batch_events"] = round(
            _metric(metrics, "netra_events_written_total") / max(batches, 1)
        )
        result["mean_batch_ms"] = round(
            1000 * _metric(metrics, "netra_batch_write_seconds_sum") / max(batches, 1), 2
        )
        result["processing_latency_mean_s"] = round(
            _metric(metrics, "netra_processing_latency_seconds_sum")
            / max(_metric(metrics, "netra_processing_latency_seconds_count"), 1), 3)  # fmt: skip
    finally:
        service.stop()
    query = [str(BIN / "netra-analytics"), "query"]
    counts = subprocess.run(
        [*query, "SELECT count(), uniqExact(event_id) FROM analytics.frontend_events"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    parts = subprocess.run(
        [*query, "SELECT count() FROM system.parts WHERE database = 'analytics' "
                 "AND table = 'frontend_events' AND active"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    stored, unique = int(counts[0]), int(counts[1])
    acked = result["ok_requests"] * EVENTS_PER_REQUEST
    result.update(
        stored=stored, duplicates=stored - unique, acknowledged=acked,
        lost=max(0, acked - stored), active_parts_after=int(parts),
    )  # fmt: skip
    return result


RAW_INSERT = """
import sys, time, json
from pathlib import Path
from netra_analytics.store.chdb_backend import ChdbStore
from netra_analytics.store.migrations import migrate
path, rows_file, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = Path(rows_file).read_bytes().split(b"\\n")
store = ChdbStore(Path(path))
migrate(store)
started = time.perf_counter()
for i in range(0, len(lines), batch):
    store.insert_json_rows("frontend_events", b"\\n".join(lines[i:i + batch]))
elapsed = time.perf_counter() - started
print(json.dumps({"rows": len(lines), "seconds": elapsed, "rows_per_s": len(lines) / elapsed}))
"""


def bench_raw_insert(body: bytes, batch: int, rows: int, workdir: Path) -> dict[str, float]:
    sys.path.insert(0, str(REPO / "src"))
    from netra_analytics.ingest.process import RequestInfo, process

    info = RequestInfo(received_at=datetime.now(UTC), user_agent="wrk", ip_hash="0" * 64)
    lines: list[bytes] = []
    while len(lines) < rows:
        lines.extend(e.row for e in process(body, info).accepted)
    rows_file = workdir / "rows.jsonl"
    rows_file.write_bytes(b"\n".join(lines[:rows]))
    db = workdir / f"raw-{batch}"
    shutil.rmtree(db, ignore_errors=True)
    out = subprocess.run(
        [sys.executable, "-c", RAW_INSERT, str(db), str(rows_file), str(batch)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result: dict[str, float] = json.loads(out)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--bare-seconds", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    body = request_body()
    with tempfile.TemporaryDirectory(prefix="netra-bench-") as tmp:
        workdir = Path(tmp)
        body_file = workdir / "body.json"
        body_file.write_bytes(body)
        bare, service, raw_same, raw_5000 = [], [], [], []
        for repeat in range(args.repeats):
            bare.append(bench_bare(body_file, args.bare_seconds, workdir))
            service.append(bench_service(body_file, args.seconds, workdir))
            rows = int(service[-1]["stored"])
            same_batch = max(1, int(service[-1]["mean_batch_events"]))
            raw_same.append(bench_raw_insert(body, same_batch, min(rows, 300_000), workdir))
            raw_5000.append(bench_raw_insert(body, 5000, min(rows, 300_000), workdir))
            print(f"repeat {repeat + 1}: bare {bare[-1]}\n  service {service[-1]}\n"
                  f"  raw same-batch {raw_same[-1]}\n  raw 5000 {raw_5000[-1]}", flush=True)  # fmt: skip
    summary = {
        "machine": {"cores": os.cpu_count(), "date": datetime.now(UTC).date().isoformat()},
        "body_bytes": len(body),
        "bare_http_events_per_s": median(bare, "events_per_s"),
        "bare_http_p99_ms": median(bare, "p99_ms"),
        "service_events_per_s": median(service, "events_per_s"),
        "service_p50_ms": median(service, "p50_ms"),
        "service_p99_ms": median(service, "p99_ms"),
        "service_lost_events_max": max(r["lost"] for r in service),
        "service_duplicates_max": max(r["duplicates"] for r in service),
        "service_mean_batch_events": median(service, "mean_batch_events"),
        "service_mean_batch_ms": median(service, "mean_batch_ms"),
        "service_active_parts_after": median(service, "active_parts_after"),
        "raw_insert_same_batch_rows_per_s": median(raw_same, "rows_per_s"),
        "raw_insert_5000_rows_per_s": median(raw_5000, "rows_per_s"),
        "runs": {
            "bare": bare,
            "service": service,
            "raw_same_batch": raw_same,
            "raw_5000": raw_5000,
        },
    }
    summary["service_over_bare_http"] = round(
        summary["service_events_per_s"] / summary["bare_http_events_per_s"], 3
    )
    summary["service_over_raw_insert_5000"] = round(
        summary["service_events_per_s"] / summary["raw_insert_5000_rows_per_s"], 3
    )
    save_results("ingest", summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
