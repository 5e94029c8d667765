"""Export and erasure of one person with a million events, in the embedded store.

1. Load: `bench.reports_bench.load` (the reports' 10 M-event data, smaller by default), then
   `--person-events` events of one person (every type, over 90 days) with prompts.
2. Export: `privacy.export.export_lines` read to the end in this process, timed, with the
   peak of Python's allocations (tracemalloc) and the process's RSS before and after: the
   pages of 5,000 rows are what bounds memory, not the person's size.
3. Erasure: `privacy.erasure.erase` (rows removed, user sets rebuilt, outdated parts purged),
   timed, and the count left for the person (must be 0).

    .venv/bin/python -m bench.privacy_bench [--events 2000000] [--person-events 1000000]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from bench.common import save_results
from bench.reports_bench import load
from netra_analytics.privacy.erasure import erase
from netra_analytics.privacy.export import export_lines
from netra_analytics.store.chdb_backend import ChdbStore

PERSON = "bench-person"
PERSON_EVENTS = """
INSERT INTO analytics.frontend_events
  (event_id, timestamp, user_id, session_id, event_type, event_category, event_action, properties, page_path)
SELECT generateUUIDv4(number), {until:DateTime64(3)} - toIntervalMillisecond(number * 7777 % (89 * 86400000)),
  {person:String}, concat('s', toString(number % 1000)),
  ['chat_interaction', 'feature_usage', 'performance_metric', 'feedback_submission'][1 + number % 4],
  'interaction', 'open', '{"prompt_text":"how do I lower my bill"}', '/chat'
FROM numbers({n:UInt64})
"""


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--person-events", type=int, default=1_000_000)
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp(prefix="netra-privacy-bench-"))
    try:
        loaded = load(path, args.events)
        store = ChdbStore(path)
        store.execute(
            PERSON_EVENTS, {"until": datetime.now(UTC), "person": PERSON, "n": args.person_events}
        )
        peak_rss_before = _rss_mib()
        tracemalloc.start()
        started = time.perf_counter()
        lines = sum(1 for _ in export_lines(store, PERSON))
        export_s = time.perf_counter() - started
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        started = time.perf_counter()
        result = erase(store, PERSON)
        erase_s = time.perf_counter() - started
        [left] = store.query_rows(
            "SELECT count() AS n FROM analytics.frontend_events WHERE user_id = {p:String}",
            {"p": PERSON},
        )
        results = {
            "events_loaded": loaded["events"],
            "person_events": args.person_events,
            "export_lines": lines,
            "export_seconds": round(export_s, 1),
            "export_rows_per_second": round(lines / export_s),
            "export_python_peak_mib": round(traced_peak / 2**20, 1),
            "max_rss_mib_before_export": round(peak_rss_before),
            "max_rss_mib_after_export": round(_rss_mib()),
            "erase_seconds": round(erase_s, 1),
            "erased": result.as_dict(),
            "left_after_erasure": int(left["n"]),
        }
        store.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)
    save_results("privacy", results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
