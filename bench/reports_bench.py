"""Report latency on 10 million events in the embedded store.

1. Load: 10,000,000 `frontend_events` rows over the last 90 days (100,000 users, every event
   type with realistic properties; the materialized view fills as they go in) and 1,000,000
   `prompt_analytics` rows over the last 30 days, generated inside ClickHouse
   (`INSERT ... SELECT FROM numbers()`), so loading takes seconds, not hours.
2. Funnels (`bench.funnels_bench.compare`): build the funnel walks up to yesterday, as the
   service does each night (so that it finds them built), and time the funnels of the same
   windows walked from the events and read from the walks, in this process.
3. Serve: `netra-analytics serve` on that data directory, report cache off
   (`ANALYTICS_REPORT_CACHE_SECONDS=0`) so every call computes.
4. Measure: after one untimed call of each report and a pause (the service's start-up work,
   such as rebuilding the prompt index from the million prompts, must not be what is timed),
   each report `--calls` times (default 20) over 30-day ranges (shifted by a day per call),
   sequentially from one client; p50 and p95 of the wall time per call.

    .venv/bin/python -m bench.reports_bench [--events 10000000] [--calls 20]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import BenchService, percentile, save_results
from bench.funnels_bench import compare
from netra_analytics.store.chdb_backend import ChdbStore
from netra_analytics.store.migrations import migrate

EVENTS = """
INSERT INTO analytics.frontend_events
  (event_id, timestamp, user_id, session_id, event_type, event_category, event_action,
   event_label, event_value, properties, page_path)
SELECT
  generateUUIDv4(number) AS event_id,
  {until:DateTime64(3)} - toIntervalMillisecond(cityHash64(number, 1) % {span_ms:UInt64}) AS timestamp,
  concat('u', toString(cityHash64(number, 2) % {users:UInt64})) AS user_id,
  concat(user_id, '-', toString(toDate(timestamp))) AS session_id,
  ['chat_interaction', 'chat_interaction', 'chat_interaction', 'feature_usage', 'performance_metric',
   'thread_lifecycle', 'error_tracking', 'feedback_submission', 'survey_response'][1 + cityHash64(number, 3) % 9] AS event_type,
  multiIf(event_type IN ('feedback_submission', 'survey_response'), 'feedback',
          event_type IN ('performance_metric', 'error_tracking'), 'technical', 'interaction') AS event_category,
  multiIf(event_type = 'chat_interaction', ['user_prompt', 'ai_response'][1 + number % 2],
          event_type = 'thread_lifecycle', ['created', 'continued', 'completed', 'abandoned'][1 + number % 4],
          event_type = 'feature_usage', ['open', 'savings_identified'][1 + number % 2],
          event_type = 'performance_metric', 'page_load',
          event_type = 'error_tracking', 'medium',
          event_type = 'feedback_submission', ['nps', 'csat', 'feature_request', 'bug_report'][1 + number % 4],
          ['pain_perception', 'magic_wand', 'spending', 'planning'][1 + number % 4]) AS event_action,
  multiIf(event_type = 'chat_interaction', 'gpt-4o-mini', event_type = 'feature_usage', 'cost_explorer',
          event_type = 'performance_metric', 'success', event_type = 'error_tracking', 'TypeError', '') AS event_label,
  toFloat64(multiIf(event_type = 'chat_interaction', number % 2000, event_type = 'performance_metric', number % 3000,
                    event_type = 'feedback_submission', number % 11, event_type = 'survey_response', 1 + number % 10, 1)) AS event_value,
  multiIf(
    event_type = 'chat_interaction',
      concat('{"thread_id":"t', toString(number % 100000), '","message_id":"m', toString(number),
             '","message_type":"', event_action, '","prompt_length":40,"is_follow_up":',
             if(number % 3 = 0, 'true', 'false'), ',"tokens_consumed":', toString(number % 2000),
             if(event_action = 'ai_response', concat(',"response_time_ms":', toString(number % 5000)), ''), '}'),
    event_type = 'feedback_submission',
      concat('{"feedback_type":"', event_action, '","score":', toString(if(event_action = 'csat', 1 + number % 5, number % 11)), '}'),
    event_type = 'survey_response',
      concat('{"survey_id":"s1","question_id":"q1","question_type":"', event_action,
             '","response_scale":', toString(1 + number % 10), ',"ai_spend_last_month":', toString(number % 5000), '}'),
    event_type = 'performance_metric', concat('{"metric_type":"page_load","duration_ms":', toString(number % 3000), ',"success":true}'),
    '{}') AS properties,
  ['/home', '/chat', '/costs', '/settings'][1 + cityHash64(number, 4) % 4] AS page_path
FROM numbers({n:UInt64})
"""

PROMPTS = """
INSERT INTO analytics.prompt_analytics
SELECT
  generateUUIDv4(number), {until:DateTime64(3)} - toIntervalMillisecond(cityHash64(number, 5) % {span_ms:UInt64}),
  concat('u', toString(cityHash64(number, 6) % {users:UInt64})), concat('t', toString(number % 100000)),
  toString(cityHash64(number % 5000)),
  ['cost_optimisation', 'latency', 'model_selection', 'quality_evaluation', 'debugging',
   'data_integration', 'account_billing', 'general'][1 + number % 8],
  ['question', 'instruction', 'comparison', 'troubleshooting', 'planning'][1 + number % 5],
  (number % 100) / 100, 0.6, 0.7, number % 4 = 0, number % 3 = 0, [], (number % 50) / 100, NULL,
  concat('s', toString(number % 100000)), concat('question number ', toString(number % 5000)), 'gpt-4o-mini',
  concat('{"signals":{"responded":', if(number % 10 = 0, 'false', 'true'), ',"response_time_ms":900.0,"errors_after":0},',
         '"tokens":{"input":40,"output":', toString(number % 1000), ',"cached_input":0}}'),
  1
FROM numbers({n:UInt64})
"""


def load(path: Path, events: int) -> dict[str, float]:
    store = ChdbStore(path)
    migrate(store)
    now = datetime.now(UTC)
    started = time.perf_counter()
    store.execute(EVENTS, {"until": now, "span_ms": 90 * 86_400_000, "users": 100_000, "n": events})
    loaded_events = time.perf_counter() - started
    started = time.perf_counter()
    store.execute(
        PROMPTS, {"until": now, "span_ms": 30 * 86_400_000, "users": 100_000, "n": events // 10}
    )
    loaded_prompts = time.perf_counter() - started
    [count] = store.query_rows("SELECT count() AS n FROM analytics.frontend_events")
    store.close()
    return {
        "events": int(count["n"]),
        "events_load_s": loaded_events,
        "prompts_load_s": loaded_prompts,
    }


WARM_UP_PAUSE = 20  # seconds after the warm-up calls, for the prompt worker's start-up to end


def measure(url: str, calls: int, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    today = datetime.now(UTC).date()

    def window(i: int) -> dict[str, str]:
        end = today - timedelta(days=i)
        return {"start_date": (end - timedelta(days=29)).isoformat(), "end_date": end.isoformat()}

    reports: dict[str, Any] = {
        "user-activity (day, rollup)": lambda i: ("user-activity", window(i)),
        "user-activity (week, rollup)": lambda i: (
            "user-activity",
            window(i) | {"granularity": "week"},
        ),
        "user-activity (hour, rollup)": lambda i: (
            "user-activity",
            window(i) | {"granularity": "hour"},
        ),
        "user-activity (day, Europe/Berlin, rollup)": lambda i: (
            "user-activity",
            window(i) | {"tz": "Europe/Berlin"},
        ),
        "user-activity (day, one user, summary view)": lambda i: (
            "user-activity",
            window(i) | {"user_id": f"u{i}"},
        ),
        "prompts (30d)": lambda i: ("prompts", {"time_range": "30d", "min_frequency": 5 + i}),
        "prompt-intelligence (30d)": lambda i: ("prompt-intelligence", {"time_range": "30d"}),
        "ai-spend": lambda i: ("ai-spend", window(i)),
        "feedback": lambda i: ("feedback", window(i)),
        "journeys": lambda i: ("journeys", window(i)),
    }
    out: dict[str, dict[str, Any]] = {}
    with httpx.Client(timeout=120, headers=headers) as client:
        # Warm-up, untimed: the service is still rebuilding its prompt index from the million
        # prompt rows when it turns ready, and a query's first run compiles it.
        for make in reports.values():
            path, params = make(calls)
            assert client.get(f"{url}/api/analytics/reports/{path}", params=params).is_success
        time.sleep(WARM_UP_PAUSE)
        for name, make in reports.items():
            timings = []
            for i in range(calls):
                path, params = make(i)
                started = time.perf_counter()
                reply = client.get(f"{url}/api/analytics/reports/{path}", params=params)
                timings.append(1000 * (time.perf_counter() - started))
                assert reply.status_code == 200, (name, reply.status_code, reply.text[:300])
            out[name] = {
                "p50_ms": statistics.median(timings),
                "p95_ms": percentile(timings, 0.95),
                "calls_ms": [round(t, 1) for t in timings],
            }
            print(
                f"{name}: p50 {out[name]['p50_ms']:.0f} ms, p95 {out[name]['p95_ms']:.0f} ms",
                flush=True,
            )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="netra-reports-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        loaded = load(data_dir / "chdb", args.events)
        print(f"loaded {loaded}", flush=True)
        # Builds the funnel walks up to yesterday, as the service would at start-up (it finds
        # them built), and compares both ways of answering funnels in this run.
        funnels = compare(data_dir / "chdb")
        print(
            f"funnels {json.dumps(funnels['latency'] | {'build_seconds': funnels['build_seconds']})}"
        )
        service = BenchService(data_dir, {"ANALYTICS_REPORT_CACHE_SECONDS": "0"})
        try:
            latencies = measure(service.url, args.calls, service.headers)
        finally:
            service.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    save_results(
        "reports",
        {"load": loaded, "funnels": funnels, "calls_per_report": args.calls, "latency": latencies},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
