"""Sustained ingest under realistic traffic, beside the two ceilings it sits between, in one run.

Realistic traffic: every request is its own user and session (as browsers are), with a real
browser's user agent; `--events-per-request 20` (a chat turn's batch: every event type) and/or
`1` (what a page sends when hidden, the seven event types in turn).

Phases, each repeated `--repeats` times, interleaved, medians reported:

1. bare HTTP: a Starlette route on uvicorn (httptools, uvloop) that reads the body and replies
   202: what the HTTP stack alone can do on this machine.
2. service: `netra-analytics serve` (embedded chDB, default batch settings;
   `ANALYTICS_WORKERS=--workers`; `REDIS_ANALYTICS_URL` with `--redis`), wrk at full speed for
   `--seconds`; then, on the same service, a paced load of `--paced-rate` events/s for
   `--paced-seconds` (`bench/paced.py`: request latency from each request's due time, and
   accepted-to-visible probes); then the spool is drained, the service stopped, and
   `frontend_events` counted: every acknowledged event must be stored exactly once.
   Processing latency (receipt to stored) is the service's own histogram
   (`netra_processing_latency_seconds`, observed by the writer per request when its events
   are stored), read from `/metrics` before and after the paced load: p95 of the difference.
   With `--paced-alone` (20/request only) there is no full-speed phase: the paced load runs on
   a fresh service, measured after `--paced-warmup` s of it (a steady load, with nothing an
   overload left behind at work).
3. raw chDB insert: the same JSON rows inserted straight into a fresh `frontend_events` (with
   its materialized views), in batches of the size the service's writer used, and of 5,000.

The load runs on the same 2-core machine as the server, so every number includes the client's
share of the CPU. Results go to stdout and, as JSON, to `bench/results/ingest[-<label>].json`.

    apt-get install wrk
    .venv/bin/python -m bench.ingest_bench [--events-per-request 20 1] [--seconds 60]
        [--repeats 3] [--workers 1] [--redis] [--paced-rate 10000] [--label NAME]
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
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    BIN,
    REPO,
    BenchService,
    free_port,
    median,
    parse_wrk,
    save_results,
    wait_port,
)
from bench.live_bench import start_redis
from bench.paced import (
    BROWSER_USER_AGENTS,
    SESSION_MARKER,
    SITE_ORIGIN,
    USER_MARKER,
    realistic_bodies,
    run_paced,
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

# wrk's script: the bodies (one per line) with the markers replaced per request by ids no other
# request of any run uses (run id, wrk thread, counter), and a browser's user agent in turn.
# The load generator shares the two cores with the service: per request it only joins strings
# prepared once (each body cut at its two markers; each user agent's request head). With
# `wrk.format` and two `gsub`s per request wrk took 39.5 µs of CPU per request (20 of them
# Lua), measured with `getrusage` at one event per request (bench/README, thirteenth pass).
WRK_SCRIPT = """
wrk.method = "POST"
local bodies = {}
for line in io.lines("%(bodies)s") do
  local u1, u2 = line:find("%(user)s", 1, true)
  local s1, s2 = line:find("%(session)s", 1, true)
  bodies[#bodies + 1] = {line:sub(1, u1 - 1), line:sub(u2 + 1, s1 - 1), line:sub(s2 + 1)}
end
local agents = {%(agents)s}
local heads = {}
local counter = 0
local tid = 0
local next_tid = 0
function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
end
function init(args)
  for i, agent in ipairs(agents) do
    heads[i] = "POST " .. wrk.path .. " HTTP/1.1\\r\\nHost: " .. wrk.headers["Host"]
      .. "\\r\\nContent-Type: application/json\\r\\nOrigin: %(origin)s\\r\\nUser-Agent: "
      .. agent .. "\\r\\nContent-Length: "
  end
end
request = function()
  counter = counter + 1
  local id = "%(run)s-" .. tid .. "-" .. counter
  local parts = bodies[counter %% #bodies + 1]
  local body = parts[1] .. "u" .. id .. parts[2] .. "s" .. id .. parts[3]
  return heads[counter %% #heads + 1] .. #body .. "\\r\\n\\r\\n" .. body
end
"""


def run_wrk_realistic(
    url: str, workdir: Path, events_per_request: int, seconds: int, connections: int
) -> dict[str, Any]:
    """wrk `-t2 -c<connections>` for `seconds`, every request its own user and session."""
    bodies = workdir / f"bodies-{events_per_request}.txt"
    bodies.write_bytes(b"\n".join(realistic_bodies(events_per_request)) + b"\n")
    script = workdir / "realistic.lua"
    script.write_text(WRK_SCRIPT % {
        "bodies": bodies, "run": uuid.uuid4().hex[:12],
        "agents": ", ".join(json.dumps(a) for a in BROWSER_USER_AGENTS),
        "user": USER_MARKER.decode(), "session": SESSION_MARKER.decode(), "origin": SITE_ORIGIN,
    })  # fmt: skip
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return parse_wrk(out, seconds, events_per_request)


def bench_bare(workdir: Path, events_per_request: int, seconds: int, conns: int) -> dict[str, Any]:
    (workdir / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "uvicorn"), "bare_app:app", "--port", str(port), "--loop", "uvloop",
         "--http", "httptools", "--no-access-log", "--log-level", "warning"],
        cwd=workdir,
    )  # fmt: skip
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}/api/analytics/events"
        return run_wrk_realistic(url, workdir, events_per_request, seconds, conns)
    finally:
        server.terminate()
        server.wait(30)


def _metric(text: str, name: str) -> float:
    """The sum of a metric's samples over all its label sets (0 when absent)."""
    pattern = rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$"
    return sum(float(v) for v in re.findall(pattern, text, re.M))


def _service_accepted(text: str) -> int:
    """Events the service answered as accepted (stored, not bots'), from its own counter: wrk
    does not count the requests it had in flight when it stopped, the service does."""
    total = 0.0
    for name in ("netra_event_ingestion_events_total", "netra_events_received_total"):
        total += sum(
            float(value)
            for labels, value in re.findall(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.M)
            if 'outcome="accepted"' in labels
        )
    return int(total)


def _latency_buckets(text: str) -> dict[float, float]:
    """netra_processing_latency_seconds's cumulative buckets (since="receipt" when labelled)."""
    buckets: dict[float, float] = {}
    for labels, value in re.findall(
        r"^netra_processing_latency_seconds_bucket\{([^}]*)\} (\S+)$", text, re.M
    ):
        if "since=" in labels and 'since="receipt"' not in labels:
            continue
        le = re.search(r'le="([^"]+)"', labels).group(1)  # type: ignore[union-attr]
        bound = float("inf") if le == "+Inf" else float(le)
        buckets[bound] = buckets.get(bound, 0.0) + float(value)
    return buckets


def histogram_quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    """The q-quantile of the observations between two readings of cumulative buckets, linearly
    interpolated within its bucket (as Prometheus's histogram_quantile)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return float("nan")
    rank = q * counts[-1]
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return bounds[-1]


def _drain(url: str) -> float:
    """Seconds until the writers have stored every event the service accepted: polled every
    0.1 s, `netra_events_written_total` against the accepted events, both summed over the
    processes by /metrics (counters are written as they move). Then, untimed, until every
    worker's spool is stored (`netra_spool_backlog_bytes` zero on two readings a second's tick
    apart: each process sets it once a second), so that the next phase starts on a quiet
    service. Until 2026-12-01 the drain was timed by that second wait alone, which added
    0.6-1.6 s of its own to each drain."""
    started = time.monotonic()
    while True:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        if _metric(text, "netra_events_written_total") >= _service_accepted(text):
            break
        if time.monotonic() - started > 300:  # bots' events (bot_events) are not counted
            raise RuntimeError("the writers did not store the accepted events in 300 s")
        time.sleep(0.1)
    drained = round(time.monotonic() - started, 2)
    quiet = 0
    while quiet < 2:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        quiet = quiet + 1 if _metric(text, "netra_spool_backlog_bytes") == 0 else 0
        time.sleep(0.6)
    return drained


def _full_speed(
    result: dict[str, Any], workdir: Path, args: argparse.Namespace, epr: int, url: str
) -> str:
    """wrk at full speed for --seconds, then the writers' drain: into `result`; /metrics after."""
    result.update(run_wrk_realistic(
        f"{url}/api/analytics/events", workdir, epr, args.seconds, args.connections,
    ))  # fmt: skip
    result["drain_after_load_s"] = _drain(url)
    # What the writers kept up with: the load's acknowledged events over the load's time
    # and the time their backlog took to store after it (wrk's rate counts acknowledgements).
    result["stored_events_per_s"] = (
        result["ok_requests"] * epr / (args.seconds + result["drain_after_load_s"])
    )
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    batches = _metric(metrics, "netra_batch_write_seconds_count")
    result["batches"] = int(batches)
    result["mean_batch_events"] = round(
        _metric(metrics, "netra_events_written_total") / max(batches, 1)
    )
    result["mean_batch_ms"] = round(
        1000 * _metric(metrics, "netra_batch_write_seconds_sum") / max(batches, 1), 2
    )
    result["processing_p95_s"] = histogram_quantile(0.95, {}, _latency_buckets(metrics))
    return metrics


def bench_service(
    workdir: Path, args: argparse.Namespace, events_per_request: int, redis_url: str | None
) -> dict[str, Any]:
    data_dir = workdir / "service-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    env = {"ANALYTICS_WORKERS": str(args.workers)}
    if redis_url:
        env["REDIS_ANALYTICS_URL"] = redis_url
    service = BenchService(data_dir, env)
    url = service.url
    result: dict[str, Any] = {}
    try:
        if args.paced_alone:
            # A steady load on a fresh service: the paced rate for --paced-warmup s, not
            # measured, then the measured paced phase below; nothing an overload left behind
            # (a writer's backlog, prompt analysis catching up) is at work during it.
            run_paced(
                url, events_per_s=args.paced_rate, seconds=args.paced_warmup,
                events_per_request=20, probe_every_s=args.paced_warmup,
                headers=service.headers, run_id=uuid.uuid4().hex[:12],
            )  # fmt: skip
            result["drain_after_warmup_s"] = _drain(url)
            metrics = httpx.get(f"{url}/metrics", timeout=10).text
        else:
            metrics = _full_speed(result, workdir, args, events_per_request, url)
        if args.paced_seconds and events_per_request == 20:  # the target is set at 20/request
            paced = run_paced(
                url, events_per_s=args.paced_rate, seconds=args.paced_seconds,
                events_per_request=20, probe_every_s=args.paced_seconds / args.probes,
                headers=service.headers, run_id=uuid.uuid4().hex[:12],
            ).summary(20)  # fmt: skip
            paced["drain_after_load_s"] = _drain(url)
            after = httpx.get(f"{url}/metrics", timeout=10).text
            paced["processing_p95_s"] = histogram_quantile(
                0.95, _latency_buckets(metrics), _latency_buckets(after)
            )
            result["paced"] = paced
            metrics = after
        result["service_accepted"] = _service_accepted(metrics)
        # What the clients saw answered 202: at most what the service accepted (above).
        result["client_acknowledged"] = result.get("ok_requests", 0) * events_per_request + (
            result["paced"]["acknowledged"] + result["paced"]["visible_probes"]
            if "paced" in result
            else 0
        )
    finally:
        service.stop()
    query = [str(BIN / "netra-analytics"), "query"]
    counts = subprocess.run(
        [*query, "SELECT count(), uniqExact(event_id) FROM analytics.frontend_events"],
        env=service.env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    stored, unique = int(counts[0]), int(counts[1])
    accepted = result.get("service_accepted", 0)
    result.update(stored=stored, duplicates=stored - unique, lost=max(0, accepted - stored),
                  unexpected=max(0, stored - accepted))  # fmt: skip
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


def bench_raw_insert(
    events_per_request: int, batch: int, rows: int, workdir: Path
) -> dict[str, float]:
    """Serialise (process()) and insert `rows` rows of the same bodies, each its own user."""
    sys.path.insert(0, str(REPO / "src"))
    from netra_analytics.ingest.process import RequestInfo, process

    info = RequestInfo(received_at=datetime.now(UTC), user_agent=BROWSER_USER_AGENTS[0],
                       ip_hash="0" * 64)  # fmt: skip
    bodies = realistic_bodies(events_per_request)
    lines: list[bytes] = []
    started = time.perf_counter()
    n = 0
    while len(lines) < rows:
        ident = f"raw-{n}".encode()
        body = bodies[n % len(bodies)].replace(USER_MARKER, b"u" + ident)
        lines.extend(
            e.row for e in process(body.replace(SESSION_MARKER, b"s" + ident), info).accepted
        )
        n += 1
    serialise_s = time.perf_counter() - started
    rows_file = workdir / "rows.jsonl"
    rows_file.write_bytes(b"\n".join(lines[:rows]))
    db = workdir / f"raw-{batch}"
    shutil.rmtree(db, ignore_errors=True)
    out = subprocess.run(
        [sys.executable, "-c", RAW_INSERT, str(db), str(rows_file), str(batch)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result: dict[str, float] = json.loads(out)
    result["serialise_rows_per_s"] = len(lines) / serialise_s
    return result


def one_mode(workdir: Path, args: argparse.Namespace, epr: int) -> dict[str, Any]:
    bare: list[dict[str, Any]] = []
    service: list[dict[str, Any]] = []
    raw_same: list[dict[str, Any]] = []
    raw_5000: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        if args.bare_seconds:
            bare.append(bench_bare(workdir, epr, args.bare_seconds, args.connections))
        redis = start_redis(workdir) if args.redis else None
        try:
            service.append(bench_service(workdir, args, epr, redis[1] if redis else None))
        finally:
            if redis is not None:
                redis[0].terminate()
                redis[0].wait(30)
        print(f"{epr}/request, repeat {repeat + 1}: bare {bare[-1] if bare else None}\n"
              f"  service {service[-1]}", flush=True)  # fmt: skip
        if not (args.skip_raw or args.paced_alone):  # paced alone: no full-speed batches to copy
            rows = min(int(service[-1]["stored"]), 300_000)
            same_batch = max(1, int(service[-1]["mean_batch_events"]))
            raw_same.append(bench_raw_insert(epr, same_batch, rows, workdir))
            raw_5000.append(bench_raw_insert(epr, 5000, rows, workdir))
            print(f"  raw same-batch {raw_same[-1]}\n  raw 5000 {raw_5000[-1]}", flush=True)
    summary: dict[str, Any] = (
        {}
        if args.paced_alone
        else {
            "service_events_per_s": median(service, "events_per_s"),
            "service_stored_events_per_s": median(service, "stored_events_per_s"),
            "service_requests_per_s": median(service, "req_per_s"),
            "service_p50_ms": median(service, "p50_ms"),
            "service_p99_ms": median(service, "p99_ms"),
            "service_processing_p95_s": median(service, "processing_p95_s"),
            "service_lost_events_max": max(r["lost"] for r in service),
            "service_duplicates_max": max(r["duplicates"] for r in service),
            "service_mean_batch_events": median(service, "mean_batch_events"),
        }
    )
    if bare:
        summary["bare_http_requests_per_s"] = median(bare, "req_per_s")
        summary["bare_http_p99_ms"] = median(bare, "p99_ms")
        if not args.paced_alone:
            summary["service_over_bare_http_requests"] = round(
                summary["service_requests_per_s"] / summary["bare_http_requests_per_s"], 3
            )
    if args.paced_seconds and epr == 20:
        summary.update({
            "paced_events_per_s": median(service, "paced", "events_per_s"),
            "paced_p50_ms": median(service, "paced", "p50_ms"),
            "paced_p99_ms": median(service, "paced", "p99_ms"),
            "paced_processing_p95_s": median(service, "paced", "processing_p95_s"),
            "visible_p50_ms": median(service, "paced", "visible_p50_ms"),
            "visible_p99_ms": median(service, "paced", "visible_p99_ms"),
        })  # fmt: skip
    if raw_same:
        summary["raw_insert_same_batch_rows_per_s"] = median(raw_same, "rows_per_s")
        summary["raw_insert_5000_rows_per_s"] = median(raw_5000, "rows_per_s")
        summary["service_over_raw_insert_5000"] = round(
            summary["service_events_per_s"] / summary["raw_insert_5000_rows_per_s"], 3
        )
    summary["runs"] = {"bare": bare, "service": service, "raw_same_batch": raw_same,
                       "raw_5000": raw_5000}  # fmt: skip
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events-per-request", type=int, nargs="+", default=[20, 1],
                        choices=[1, 20])  # fmt: skip
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--bare-seconds", type=int, default=20, help="0: no bare HTTP phase")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (2 threads)")
    parser.add_argument("--workers", type=int, default=1, help="ANALYTICS_WORKERS")
    parser.add_argument("--redis", action="store_true", help="live state on a redis-server")
    parser.add_argument("--paced-rate", type=float, default=10_000, help="events/s, 20/request")
    parser.add_argument("--paced-seconds", type=int, default=30, help="0: no paced phase")
    parser.add_argument("--probes", type=int, default=200, help="visibility probes when paced")
    parser.add_argument("--paced-alone", action="store_true",
                        help="no full-speed phase: the paced load on a fresh service, after "
                             "--paced-warmup s of it (20/request only)")  # fmt: skip
    parser.add_argument("--paced-warmup", type=int, default=20, help="s, with --paced-alone")
    parser.add_argument("--skip-raw", action="store_true", help="no raw chDB insert phase")
    parser.add_argument("--label", default="", help="results go to ingest-<label>.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    summary: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "date": datetime.now(UTC).date().isoformat()},
        "settings": {k: v for k, v in vars(args).items() if k != "label"},
    }
    with tempfile.TemporaryDirectory(prefix="netra-bench-") as tmp:
        for epr in args.events_per_request:
            summary[f"{epr}_per_request"] = one_mode(Path(tmp), args, epr)
    save_results("ingest" + (f"-{args.label}" if args.label else ""), summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
