"""A/B of full-speed ingest between two source trees, interleaved, on one machine.

The machine's speed moves by tens of percent between minutes, so a change is judged against
a baseline measured in the same minutes: each round runs a fresh service from each tree
(`PYTHONPATH` put first, so the tree's `netra_analytics` is imported instead of the
installed one), in alternating order, with wrk at full speed (realistic traffic, as
`ingest_bench`) for `--seconds`, then the drain. Stored events/s = events acknowledged over
the load's time plus the drain's (`ingest_bench`'s full-speed phase, as it is). Beside it, the
service's CPU per acknowledged event over the load and the drain, in µs, for its workers and
its engine owner (`common.service_cpu_seconds`): on this machine it moves less between
minutes than the rates do (twelfth pass: ±5 % against ±9 %), so a change in the work per
event shows in it sooner. Medians per side at the end.

    git worktree add /tmp/base HEAD~1
    .venv/bin/python -m bench.ingest_ab --a /tmp/base/src --b src [--events-per-request 20]
        [--seconds 20] [--rounds 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import BenchService, service_cpu_seconds
from bench.ingest_bench import _full_speed


def one_run(tree: str, workdir: Path, args: argparse.Namespace) -> dict[str, float]:
    """A fresh service from `tree`, the load, the drain: accepted and stored events/s."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    os.environ["PYTHONPATH"] = tree
    service = BenchService(workdir / "data", {"ANALYTICS_WORKERS": str(args.workers)})
    result: dict[str, Any] = {}
    try:
        time.sleep(1)
        before = service_cpu_seconds(service.process.pid)
        _full_speed(result, workdir, args, args.events_per_request, service.url)
        after = service_cpu_seconds(service.process.pid)
    finally:
        service.stop()
    events = max(1, result["ok_requests"] * args.events_per_request)
    cpu = {role: 1e6 * (after[role] - before[role]) / events for role in after}
    return {"accepted": result["events_per_s"], "stored": result["stored_events_per_s"],
            "drain_s": result["drain_after_load_s"], "p99_ms": result["p99_ms"],
            "workers_us": cpu["workers"], "owner_us": cpu["owner"],
            "analysis_us": cpu["analysis"]}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="source tree of side A (its src directory)")
    parser.add_argument("--b", required=True, help="source tree of side B")
    parser.add_argument("--events-per-request", type=int, choices=(1, 20), default=20)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    trees = {"A": str(Path(args.a).resolve()), "B": str(Path(args.b).resolve())}
    results: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    with tempfile.TemporaryDirectory(prefix="ingest-ab-") as tmp:
        for n in range(args.rounds):
            for side in ("A", "B") if n % 2 == 0 else ("B", "A"):
                run = one_run(trees[side], Path(tmp) / side, args)
                results[side].append(run)
                print(f"{side} accepted {run['accepted']:8.0f} stored {run['stored']:8.0f} "
                      f"drain {run['drain_s']:5.1f} s p99 {run['p99_ms']} ms; CPU per event "
                      f"workers {run['workers_us']:.1f} µs, owner {run['owner_us']:.1f} µs, "
                      f"analysis {run['analysis_us']:.1f} µs", flush=True)  # fmt: skip
    for side, runs in results.items():
        print(f"{side}: median accepted {statistics.median(r['accepted'] for r in runs):.0f}, "
              f"stored {statistics.median(r['stored'] for r in runs):.0f} events/s; CPU per "
              f"event workers {statistics.median(r['workers_us'] for r in runs):.1f} µs, owner "
              f"{statistics.median(r['owner_us'] for r in runs):.1f} µs")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
