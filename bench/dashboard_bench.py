"""How long each dashboard takes to draw all its panels in Chromium, first load and refresh.

A `netra-analytics serve` (embedded chDB) is filled by `netra-analytics demo`'s generator
(through the import, with the admin key the service printed on its first start; by default the
demo's defaults: 500 people over 30 days, ~50,000 events), the prompt worker left to finish,
then each dashboard is opened `--repeats` times in Debian's Chromium (Playwright), signed in
with that key. Measured by the page itself (`data-last-load-ms`: from the first panel request
to the last panel drawn):

- first load: a fresh page, all panels fetched and drawn;
- refresh: the page's next automatic refresh (every 5 s here), all panels again.

Over the last 30 days (cached by the service after the first load, as the reports are) and
the last 24 hours (never cached). Also each panel endpoint alone (httpx, uncached 24 h, and 30
days) for the slowest. Medians; raw runs in bench/results/dashboards.json.

    .venv/bin/python -m bench.dashboard_bench [--users 500] [--days 30] [--repeats 3]

With `--events 10000000`: the reports bench's store instead (bench/reports_bench.py: 10 M
events over 90 days and 1 M prompts, loaded inside ClickHouse, funnel walks built as the service
builds them each night), served with the report cache off, so every call computes; each panel
endpoint timed `--repeats` times over the last 30 days and the last 24 hours (p50, p95), and
each dashboard drawn in Chromium as above.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import REPO, BenchService, percentile, save_results

sys.path.insert(0, str(REPO))

from tests.dashboards.test_browser import api_key, fill, sign_in
from tests.support.processes import ServiceProcess
from tests.tag.test_browser import CHROMIUM, CHROMIUM_ARGS, USER_AGENT

from netra_analytics.dashboards.catalog import DASHBOARDS, PANELS


def draw_times(url: str, key: str, repeats: int) -> list[dict[str, int]]:
    from playwright.sync_api import sync_playwright

    runs: list[dict[str, int]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(repeats):
            context = browser.new_context(
                user_agent=USER_AGENT, viewport={"width": 1366, "height": 900}
            )
            sign_in(context.new_page(), url.split("/dashboards/")[0], key)
            page = context.new_page()
            page.goto(url)
            page.wait_for_function("() => document.body.dataset.loads === '1'", timeout=120_000)
            first = int(page.evaluate("document.body.dataset.lastLoadMs"))
            page.wait_for_function("() => document.body.dataset.loads === '2'", timeout=120_000)
            refresh = int(page.evaluate("document.body.dataset.lastLoadMs"))
            runs.append({"first_load_ms": first, "refresh_ms": refresh})
            context.close()
        browser.close()
    return runs


def panel_times(service: ServiceProcess, span: timedelta, repeats: int) -> dict[str, float]:
    now = datetime.now(UTC)
    params = {"from": (now - span).isoformat(), "to": now.isoformat()}
    out: dict[str, float] = {}
    headers = service.admin_headers()
    with httpx.Client(base_url=service.url, headers=headers, timeout=60) as http:
        for panel in PANELS:
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                reply = http.get(f"/api/analytics/panels/{panel.id}", params=params)
                times.append(1000 * (time.perf_counter() - started))
                assert reply.status_code == 200, reply.text
            out[panel.id] = round(statistics.median(times), 1)
    return out


def panel_percentiles(
    url: str, key: str, span: timedelta, calls: int
) -> dict[str, dict[str, float]]:
    """p50 and p95 of each panel endpoint over `calls` calls, ranges shifted a minute apart (so
    no two calls ask the same question)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    out: dict[str, dict[str, float]] = {}
    headers = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        for panel in PANELS:
            times = []
            for i in range(calls):
                end = now - timedelta(minutes=i)
                params = {"from": (end - span).isoformat(), "to": end.isoformat()}
                started = time.perf_counter()
                reply = http.get(f"/api/analytics/panels/{panel.id}", params=params)
                times.append(1000 * (time.perf_counter() - started))
                assert reply.status_code == 200, reply.text
            out[panel.id] = {
                "p50": round(percentile(times, 0.5), 1),
                "p95": round(percentile(times, 0.95), 1),
            }
    return out


def bench_store(events: int, repeats: int) -> dict[str, Any]:
    from bench.funnels_bench import compare
    from bench.reports_bench import load

    with tempfile.TemporaryDirectory(prefix="netra-dashboards-bench-") as folder:
        data_dir = Path(folder) / "data"
        loaded = load(data_dir / "chdb", events)
        compare(data_dir / "chdb")  # builds the funnel walks, as the service does each night
        service = BenchService(data_dir, {"ANALYTICS_REPORT_CACHE_SECONDS": "0"})
        key = service.headers["authorization"].removeprefix("Bearer ")
        try:
            for board in DASHBOARDS:  # warm-up: the service's start-up work is not timed
                for panel in board.panels:
                    httpx.get(f"{service.url}/api/analytics/panels/{panel}", timeout=120,
                              headers={"authorization": f"Bearer {key}"})  # fmt: skip
            time.sleep(20)
            summary: dict[str, Any] = {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "load": loaded,
                "note": "shared 2-core machine: other engineers' tests ran at the same time",
                "panel_endpoint_ms_30d": panel_percentiles(
                    service.url, key, timedelta(days=30), repeats
                ),
                "panel_endpoint_ms_24h": panel_percentiles(
                    service.url, key, timedelta(hours=24), repeats
                ),
                "dashboards": {},
            }
            for board in DASHBOARDS:
                for label in ("30d", "24h"):
                    runs = draw_times(
                        f"{service.url}/dashboards/{board.name}?range={label}&refresh=5", key, 1
                    )
                    summary["dashboards"][f"{board.name} ({label})"] = runs[0]
        finally:
            service.stop()
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--events", type=int, default=0, help="0: the demo's traffic")
    args = parser.parse_args()
    if args.events:
        save_results("dashboards_10m", bench_store(args.events, args.repeats))
        return
    with tempfile.TemporaryDirectory() as folder:
        service = ServiceProcess(Path(folder) / "data", env={"EVENT_FLUSH_INTERVAL_MS": "200"})
        service.start()
        try:
            started = time.perf_counter()
            sent = fill(service, users=args.users, days=args.days)
            key = api_key(service)
            summary: dict[str, Any] = {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "events": sent.events,
                "users": args.users,
                "days": args.days,
                "demo_s": round(sent.seconds, 1),
                "filled_and_analysed_s": round(time.perf_counter() - started, 1),
                "cpu_count": os.cpu_count(),
                "note": "shared 2-core machine: other engineers' tests ran at the same time",
                "dashboards": {},
                "runs": {},
            }
            for board in DASHBOARDS:
                for label in ("30d", "24h"):
                    url = f"{service.url}/dashboards/{board.name}?range={label}&refresh=5"
                    runs = draw_times(url, key, args.repeats)
                    summary["runs"][f"{board.name}:{label}"] = runs
                    summary["dashboards"][f"{board.name} ({label})"] = {
                        "first_visit_ms": runs[0]["first_load_ms"],  # cold: nothing cached
                        **{
                            name: statistics.median(run[name] for run in runs)
                            for name in ("first_load_ms", "refresh_ms")
                        },
                    }
            summary["panel_endpoint_ms_24h"] = panel_times(
                service, timedelta(hours=24), args.repeats
            )
            summary["panel_endpoint_ms_30d"] = panel_times(service, timedelta(days=30), 1)
        finally:
            service.stop()
    save_results("dashboards", summary)


if __name__ == "__main__":
    main()
