"""What the live state on Redis costs, and how fast an accepted event becomes visible.

1. rate-limit call: `take()` for a 20-event request, on a real redis-server (Lua script, one
   round trip) beside the in-process backend: per call p50/p99 from one task, and calls/s from
   50 concurrent tasks.
2. the service end to end, wrk `-t2 -c50` for `--seconds`, once with the in-process live state
   and once with `REDIS_ANALYTICS_URL`: the difference is the Redis round trip's added cost
   per request (latency, and throughput on these 2 cores).
3. accepted-to-visible: while wrk drives the service at full speed (above 10,000 events/s), a
   probe posts one chat event in a new session every 200 ms and polls the live state
   (`/api/analytics/reports/sessions/{id}`, written by the same Lua call that updates the
   engagement counters) every 5 ms until the session appears; also the engagement endpoint's
   own latency under that load.

Each phase runs `--repeats` times; medians are reported and the raw runs saved to
`bench/results/live.json`.

    .venv/bin/python -m bench.live_bench [--seconds 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
from tests.factories import BROWSER_USER_AGENT

from bench.common import (
    BenchService,
    free_port,
    median,
    percentile,
    request_body,
    run_wrk,
    save_results,
    wait_port,
)
from netra_analytics.live.memory import InProcessLiveState
from netra_analytics.live.redis_backend import RedisLiveState


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is missing: apt-get install redis-server")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wait_port(port)
    return process, f"redis://127.0.0.1:{port}/2"


async def bench_take(state: Any, calls: int, concurrency: int) -> dict[str, float]:
    ids = [str(uuid.uuid4()) for _ in range(20)]
    latencies: list[float] = []
    now = int(time.time() * 1000)

    async def worker(n: int) -> None:
        for i in range(calls // concurrency):
            started = time.perf_counter()
            await state.take(f"user-{n}-{i % 500}", ids, now, 1_000_000)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "calls_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * percentile(latencies, 0.5),
        "p99_ms": 1000 * percentile(latencies, 0.99),
    }


def rate_limit_call(redis_url: str) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        redis_state = RedisLiveState(redis_url, prefix="bench:")
        out = {
            "redis_sequential": await bench_take(redis_state, 5000, 1),
            "redis_50_tasks": await bench_take(redis_state, 20000, 50),
            "in_process_sequential": await bench_take(InProcessLiveState(), 5000, 1),
        }
        await redis_state.close()
        return out

    return asyncio.run(run())


def probe_visibility(
    url: str, stop: threading.Event, out: dict[str, list[float]], headers: dict[str, str]
) -> None:
    with httpx.Client(timeout=10, headers={"user-agent": BROWSER_USER_AGENT, **headers}) as client:
        while not stop.is_set():
            text = "how do I compare model costs"
            session = f"probe-{uuid.uuid4().hex}"
            payload = {
                "events": [{"event_type": "chat_interaction", "properties": {
                    "thread_id": "probe", "message_id": uuid.uuid4().hex, "message_type": "user_prompt",
                    "prompt_text": text, "prompt_length": len(text), "is_follow_up": False}}],
                "context": {"user_id": f"probe-{uuid.uuid4().hex[:8]}", "session_id": session},
            }  # fmt: skip
            reply = client.post(f"{url}/api/analytics/events", content=orjson.dumps(payload),
                                headers={"content-type": "application/json"})  # fmt: skip
            accepted = time.perf_counter()
            if reply.status_code != 202:
                continue
            while True:  # a probe not visible after 5 s counts as 5 s, so none is dropped
                found = client.get(f"{url}/api/analytics/reports/sessions/{session}")
                waited = time.perf_counter() - accepted
                if found.status_code == 200 or waited > 5:
                    out["visible_ms"].append(1000 * min(waited, 5.0))
                    break
                time.sleep(0.005)
            started = time.perf_counter()
            client.get(f"{url}/api/analytics/reports/engagement")
            out["engagement_ms"].append(1000 * (time.perf_counter() - started))
            stop.wait(0.2)


def service_phase(
    workdir: Path, body_file: Path, seconds: int, redis_url: str | None
) -> dict[str, Any]:
    env = {"REDIS_ANALYTICS_URL": redis_url} if redis_url else {}
    data_dir = workdir / ("redis" if redis_url else "in-process")
    shutil.rmtree(data_dir, ignore_errors=True)
    service = BenchService(data_dir, env)
    samples: dict[str, list[float]] = {"visible_ms": [], "engagement_ms": []}
    stop = threading.Event()
    probe = threading.Thread(
        target=probe_visibility, args=(service.url, stop, samples, service.headers)
    )
    try:
        probe.start()
        result: dict[str, Any] = run_wrk(f"{service.url}/api/analytics/events", body_file, seconds)
    finally:
        stop.set()
        probe.join(30)
        service.stop()
    result["visible_p50_ms"] = percentile(samples["visible_ms"], 0.5)
    result["visible_p99_ms"] = percentile(samples["visible_ms"], 0.99)
    result["visible_samples"] = len(samples["visible_ms"])
    result["engagement_p50_ms"] = percentile(samples["engagement_ms"], 0.5)
    result["engagement_p99_ms"] = percentile(samples["engagement_ms"], 0.99)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: apt-get install wrk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="netra-live-bench-") as tmp:
        workdir = Path(tmp)
        body_file = workdir / "body.json"
        body_file.write_bytes(request_body())
        redis_process, redis_url = start_redis(workdir)
        calls, local, on_redis = [], [], []
        try:
            for repeat in range(args.repeats):
                calls.append(rate_limit_call(redis_url))
                local.append(service_phase(workdir, body_file, args.seconds, None))
                on_redis.append(service_phase(workdir, body_file, args.seconds, redis_url))
                print(f"repeat {repeat + 1}:\n  take {calls[-1]}\n  in-process {local[-1]}\n"
                      f"  redis {on_redis[-1]}", flush=True)  # fmt: skip
        finally:
            redis_process.terminate()
            redis_process.wait(30)
    summary: dict[str, Any] = {
        "take_redis_p50_ms": median(calls, "redis_sequential", "p50_ms"),
        "take_redis_p99_ms": median(calls, "redis_sequential", "p99_ms"),
        "take_redis_calls_per_s_50_tasks": median(calls, "redis_50_tasks", "calls_per_s"),
        "take_in_process_p50_ms": median(calls, "in_process_sequential", "p50_ms"),
        "service_in_process_events_per_s": median(local, "events_per_s"),
        "service_in_process_p50_ms": median(local, "p50_ms"),
        "service_in_process_p99_ms": median(local, "p99_ms"),
        "service_redis_events_per_s": median(on_redis, "events_per_s"),
        "service_redis_p50_ms": median(on_redis, "p50_ms"),
        "service_redis_p99_ms": median(on_redis, "p99_ms"),
        "visible_redis_p50_ms": median(on_redis, "visible_p50_ms"),
        "visible_redis_p99_ms": median(on_redis, "visible_p99_ms"),
        "visible_in_process_p99_ms": median(local, "visible_p99_ms"),
        "engagement_redis_p50_ms": median(on_redis, "engagement_p50_ms"),
        "engagement_redis_p99_ms": median(on_redis, "engagement_p99_ms"),
        "runs": {"take": calls, "in_process": local, "redis": on_redis},
    }
    save_results("live", summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
