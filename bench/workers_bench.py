"""Ingest with one process against several worker processes (`ANALYTICS_WORKERS`).

Realistic traffic: every request comes from its own user and session (the wrk script numbers
them per thread), without event ids (the service assigns them), with a browser's user agent.
For each round, each worker count in `--workers` and each batch size in `--batches` runs once
(interleaved, so that other work on the machine falls on every configuration alike), on a fresh
data directory with the default settings: wrk -t2 -c32 for `--seconds`, then SIGTERM (the
workers flush their spools), then the stored rows are counted with `netra-analytics query`.
`--connections` changes wrk's -c (default 32).

Reported per configuration, medians over the rounds: acknowledged events/s while wrk ran,
request latency p50/p99, how long the stop took (the flush of what was left), and stored
events/s = stored / (seconds + stop seconds), a lower bound of the storing rate; and whether
every acknowledged event was stored exactly once (rows, distinct ids). The client runs on the
same machine as the server.

    .venv/bin/python -m bench.workers_bench [--seconds 15] [--rounds 3] [--workers 1 2 3]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.common import BIN, REPO, _ms, free_port, median, save_results, wait_http

MARK = "__WHO__"
CONNECTIONS = 32  # wrk's default here (-c, `--connections`)
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def body(events: int) -> bytes:
    sys.path.insert(0, str(REPO))
    from tests.factories import EXAMPLES

    kinds = list(EXAMPLES)
    batch = [
        {"event_type": kinds[i % len(kinds)], "properties": EXAMPLES[kinds[i % len(kinds)]]}
        for i in range(events)
    ]
    context = {"user_id": f"u-{MARK}", "session_id": f"s-{MARK}", "page_path": "/chat"}
    return orjson.dumps({"events": batch, "context": context})


LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "%(agent)s"
local f = io.open("%(body)s", "rb")
local body = f:read("*a")
f:close()
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
function request()
  n = n + 1
  local who = tid .. "-" .. n .. "-%(run)s"
  return wrk.format(nil, nil, nil, (body:gsub("%(mark)s", who)))
end
"""


def run_wrk(
    url: str, body_file: Path, seconds: int, run: str, connections: int
) -> dict[str, float]:
    script = body_file.with_suffix(".lua")
    script.write_text(LUA % {"agent": USER_AGENT, "body": body_file, "run": run, "mark": MARK})
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    latency = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"\s+(50|99)%\s+(\S+)", out)}
    return {
        "ok_requests": requests - (int(non_2xx.group(1)) if non_2xx else 0),
        "p50_ms": latency.get("50", float("nan")),
        "p99_ms": latency.get("99", float("nan")),
    }


def one(
    workers: int, events: int, seconds: int, workdir: Path, run: str, connections: int
) -> dict[str, Any]:
    data_dir = workdir / f"data-{run}"
    port = free_port()
    env = {**os.environ, "ANALYTICS_DATA_DIR": str(data_dir), "ANALYTICS_SERVICE_PORT": str(port),
           "ANALYTICS_SERVICE_HOST": "127.0.0.1", "ANALYTICS_LOG_LEVEL": "warning",
           "ANALYTICS_WORKERS": str(workers), "ANALYTICS_FUNNEL_WALK_DAYS": "0"}  # fmt: skip
    log = open(workdir / f"{run}.log", "wb")  # noqa: SIM115 (closed below)
    server = subprocess.Popen([str(BIN / "netra-analytics"), "serve"], env=env, stderr=log,
                              stdout=log)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health/ready", 120)
        time.sleep(3.0 if workers > 1 else 0.5)  # every worker up
        body_file = workdir / f"body-{events}.json"
        body_file.write_bytes(body(events))
        result = run_wrk(f"{url}/api/analytics/events", body_file, seconds, run, connections)
        stopping = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(120)
        stop_seconds = time.monotonic() - stopping
    finally:
        if server.poll() is None:
            server.kill()
        log.close()
    rows, distinct = subprocess.run(
        [str(BIN / "netra-analytics"), "query",
         "SELECT count(), uniqExact(event_id) FROM analytics.frontend_events"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    acked = result["ok_requests"] * events
    return {
        "workers": workers, "events_per_request": events, "connections": connections,
        "acked_events_per_s": acked / seconds, "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"], "stop_seconds": stop_seconds,
        "stored_events_per_s": int(rows) / (seconds + stop_seconds),
        "acked": acked, "stored_rows": int(rows), "stored_distinct": int(distinct),
    }  # fmt: skip


def _stored_once(run: dict[str, Any]) -> bool:
    """No duplicates, nothing acknowledged missing. wrk counts the requests answered within its
    time; those still open at its end (at most one per connection) may be stored too."""
    rows, distinct, acked = (int(run[k]) for k in ("stored_rows", "stored_distinct", "acked"))
    in_flight = int(run["connections"]) * int(run["events_per_request"])
    return rows == distinct and acked <= rows <= acked + in_flight


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--batches", type=int, nargs="+", default=[20, 1])
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--name", default="workers", help="of the results file")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="workers-bench-") as tmp:
        for round_ in range(args.rounds):
            for events in args.batches:
                for workers in args.workers:
                    name = f"r{round_}-w{workers}-e{events}"
                    result = one(workers, events, args.seconds, Path(tmp), name, args.connections)
                    print(name, {k: round(v, 1) if isinstance(v, float) else v
                                 for k, v in result.items()}, flush=True)  # fmt: skip
                    runs.append(result)
    summary: dict[str, Any] = {"seconds": args.seconds, "rounds": args.rounds,
                               "connections": args.connections, "medians": {}}  # fmt: skip
    for events in args.batches:
        for workers in args.workers:
            mine = [
                r for r in runs if r["workers"] == workers and r["events_per_request"] == events
            ]
            summary["medians"][f"{workers} workers, {events} events/request"] = {
                key: round(median(mine, key), 1)
                for key in (
                    "acked_events_per_s",
                    "stored_events_per_s",
                    "p50_ms",
                    "p99_ms",
                    "stop_seconds",
                )
            } | {"all_stored_once": all(_stored_once(r) for r in mine)}
    summary["runs"] = runs
    save_results(args.name, summary)


if __name__ == "__main__":
    main()
