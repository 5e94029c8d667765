"""Funnels on 10 million events: walked from the events, against read from the walks computed
ahead (reports/funnel_walks.py), in the same run on the same data.

1. Load the reports bench's data (`reports_bench.load`: 10 M events over 90 days, 100,000
   users, 1 M prompts over 30 days) unless a data directory is given.
2. Build the walks in this process, as the service does each night: every start day of the
   last 90, up to yesterday. Time it and measure the table.
3. For 30-day windows ending today and on each of the 19 days before (today's window walks on
   from yesterday's walks through today's events), alternately: the funnels from the events
   (`funnels_query`, the baseline) and the funnels as the reports get them
   (`funnel_totals`); the two answers must be equal. p50 and p95 of each.

    .venv/bin/python -m bench.funnels_bench [--events 10000000] [--data DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import percentile, save_results
from netra_analytics.reports.funnel_walks import build, funnel_totals
from netra_analytics.reports.funnels import funnels_query, load_funnels
from netra_analytics.store.chdb_backend import ChdbStore

WINDOWS = 20

WALKS_SIZE = """
SELECT sum(rows) AS rows, sum(data_compressed_bytes) AS compressed
FROM system.parts WHERE database = 'analytics' AND table = 'funnel_walks' AND active
"""


def compare(path: Path) -> dict[str, Any]:
    """Build the walks in the store at `path`, then time both ways of answering."""
    store = ChdbStore(path)
    try:
        funnels = load_funnels(None)
        today = datetime.now(UTC).date()
        built = build(store, funnels, today - timedelta(days=1), 90)
        [size] = store.query_rows(WALKS_SIZE)
        timings: dict[str, list[float]] = {"from_events": [], "from_walks": []}
        for i in range(-1, WINDOWS):  # -1: an untimed first round (first runs compile)
            end = today - timedelta(days=max(i, 0))
            start = end - timedelta(days=29)
            text, params = funnels_query(funnels, start, end)
            started = time.perf_counter()
            [from_events] = store.query_rows(text, params)
            middle = time.perf_counter()
            from_walks = funnel_totals(store, funnels, start, end)
            finished = time.perf_counter()
            assert from_walks == from_events, (start, end)
            if i >= 0:
                timings["from_events"].append(1000 * (middle - started))
                timings["from_walks"].append(1000 * (finished - middle))
    finally:
        store.close()
    return {
        "build_seconds": round(built.seconds, 1),
        "start_days": built.starts,
        "walk_rows": int(size["rows"]),
        "walks_mib": round(int(size["compressed"]) / 2**20, 1),
        "latency": {
            way: {
                "p50_ms": round(statistics.median(ms), 1),
                "p95_ms": round(percentile(ms, 0.95), 1),
                "calls_ms": [round(m, 1) for m in ms],
            }
            for way, ms in timings.items()
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--data", type=Path, help="an embedded store already loaded")
    args = parser.parse_args()
    if args.data is not None:
        save_results("funnels", compare(args.data))
        return 0
    from bench.reports_bench import load

    with tempfile.TemporaryDirectory(prefix="netra-funnels-bench-") as tmp:
        loaded = load(Path(tmp) / "chdb", args.events)
        save_results("funnels", {"load": loaded} | compare(Path(tmp) / "chdb"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
