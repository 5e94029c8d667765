"""What memory the service's in-process structures take per 100,000 visitors, prompts and
cached reports, and whether it stays flat (issue 13).

Each part runs in a fresh Python process (its RSS is the measurement), driving the structure
directly with a clock passed in, as the service would after hours of traffic:

1. live state (`InProcessLiveState`): visitors arrive 20 a second, each with one request: a
   rate-limit `take` and a `record` with one distinct prompt. RSS after 100,000, 200,000 and
   300,000 visitors (at 20/s, the hour of a session is 72,000 visitors: the first 100,000 are
   the warm-up); MB per 100,000 visitors after it.
2. similarity index: distinct prompts of ~80 characters; RSS after 60,000 (past the default
   bound of 20,000 texts) and after 120,000; MB per 100,000 prompts after the first 60,000.
3. report cache: 2,000 distinct reports of 138 KB (what the issue measured) put within one
   TTL; MB held.
4. prompt threads (`PromptAnalyser`): user prompts of ~80 characters, each opening its own
   thread, through `analyse` 50 to a request. Unbounded, RSS after 20,000 and 60,000: RSS per
   estimated byte (`thread_bytes`, which the budget counts) between them, ~1 if the estimate is
   true. Then, under the default budget, RSS after 100,000 and 200,000 prompts: flat.

Run it on this tree, and on another one for a comparison (its `src` first on the path):

    .venv/bin/python -m bench.memory_bench [--src /path/to/other/src] [--label before]

Results: printed, and saved to `bench/results/memory-{label}.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")
T0 = 1_764_000_000_000


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    [line] = [x for x in status.splitlines() if x.startswith("VmRSS:")]
    return int(line.split()[1]) / 1024


def live_part() -> dict[str, Any]:
    from netra_analytics.live.base import Activity
    from netra_analytics.live.memory import InProcessLiveState

    async def run() -> dict[str, Any]:
        state = InProcessLiveState()
        marks: dict[str, float] = {"start": rss_mb()}
        for i in range(300_000):
            now = T0 + i * 50
            await state.take(f"visitor-{i}", [f"event-{i}"], now, 1000)
            text = f"question {i}: how much would plan {i * 7919} cost us per month?"
            await state.record(
                Activity(
                    at_ms=now,
                    user_id=f"visitor-{i}",
                    session_id=f"session-{i}",
                    page_path="/chat",
                    thread_id=f"thread-{i}",
                    counters={
                        "events": 1.0,
                        "chat_messages": 1.0,
                        "ai_response_ms_sum": 0.0,
                        "ai_response_count": 0.0,
                        "errors": 0.0,
                    },
                    by_type=Counter({"chat_interaction": 1}),
                    prompts=[(f"h{i:08d}", text)],
                )
            )
            if i % 100_000 == 99_999:
                marks[f"{i + 1}"] = rss_mb()
        await state.hot_prompts(T0 + 300_000 * 50, 10)
        sizes = state.sizes() if hasattr(state, "sizes") else {}
        return {"rss_mb": marks, "sizes": sizes,
                "mb_per_100k_after_warm_up": (marks["300000"] - marks["100000"]) / 2}  # fmt: skip

    return asyncio.run(run())


def similarity_part() -> dict[str, Any]:
    from netra_analytics.prompts.normalise import prompt_hash
    from netra_analytics.prompts.similarity import SimilarityIndex

    index = SimilarityIndex()
    marks = {"start": rss_mb()}
    for i in range(120_000):
        text = f"question {i}: how much would plan {i * 7919} cost us per month, roughly?"
        index.add(f"p{i}", f"u{i % 5000}", T0 + i * 1000, prompt_hash(text), text)
        if i % 60_000 == 59_999:
            marks[f"{i + 1}"] = rss_mb()
    return {"rss_mb": marks, "texts": len(index),
            "mb_per_100k_after_60k": (marks["120000"] - marks["60000"]) * 100 / 60}  # fmt: skip


def cache_part() -> dict[str, Any]:
    from netra_analytics.live.memory import InProcessLiveState

    async def run() -> dict[str, Any]:
        state = InProcessLiveState()
        start = rss_mb()
        body = b"x" * 138_000
        for i in range(2000):
            await state.cache_put(f"report-{i}", body + str(i).encode(), 60)
        return {"rss_mb": {"start": start, "2000 reports": rss_mb()},
                "held_mb": rss_mb() - start}  # fmt: skip

    return asyncio.run(run())


def threads_part() -> dict[str, Any]:
    from datetime import UTC, datetime

    import orjson

    from netra_analytics.ingest.process import RequestInfo, process
    from netra_analytics.ingest.writer import SpoolRecord
    from netra_analytics.prompts.classify import default_classifier
    from netra_analytics.prompts.similarity import SimilarityIndex
    from netra_analytics.prompts.worker import DEFAULT_THREAD_CACHE_BYTES, PromptAnalyser

    def records(first: int, count: int) -> list[tuple[int, SpoolRecord]]:
        at = datetime.now(UTC)
        events = [{"event_type": "chat_interaction", "timestamp": at.isoformat(), "properties": {
            "thread_id": f"thread-{i}", "message_id": f"m{i}", "message_type": "user_prompt",
            "prompt_text": f"question {i}: how much would plan {i * 7919} cost us per month?",
            "prompt_length": 60, "is_follow_up": False}} for i in range(first, first + count)]  # fmt: skip
        body = {"events": events, "context": {"user_id": f"u{first}", "session_id": f"s{first}"}}
        batch = process(orjson.dumps(body), RequestInfo(received_at=at))
        rows = [(e.event_id, f"u{first}", e.row) for e in batch.accepted]
        return [(first, SpoolRecord(at.timestamp(), rows, []))]

    def feed(analyser: PromptAnalyser, start: int, end: int) -> None:
        for first in range(start, end, 50):
            analyser.analyse(records(first, 50))

    classifier = default_classifier()
    unbounded = PromptAnalyser(classifier, SimilarityIndex(), max_bytes=1 << 40)
    feed(unbounded, 0, 20_000)
    marks = {"20000 unbounded": rss_mb()}
    held = unbounded.held_bytes
    feed(unbounded, 20_000, 60_000)
    marks["60000 unbounded"] = rss_mb()
    rss_per_estimated = (
        (marks["60000 unbounded"] - marks["20000 unbounded"])
        * 2**20
        / (unbounded.held_bytes - held)
    )
    del unbounded
    bounded = PromptAnalyser(classifier, SimilarityIndex())
    marks["bounded start"] = rss_mb()
    feed(bounded, 0, 100_000)
    marks["100000 bounded"] = rss_mb()
    feed(bounded, 100_000, 200_000)
    marks["200000 bounded"] = rss_mb()
    return {"rss_mb": marks, "rss_per_estimated_byte": round(rss_per_estimated, 3),
            "budget_mb": DEFAULT_THREAD_CACHE_BYTES / 2**20, "bounded": bounded.sizes()}  # fmt: skip


PARTS = {
    "live": live_part,
    "similarity": similarity_part,
    "cache": cache_part,
    "threads": threads_part,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", help="another tree's src directory, to measure it instead")
    parser.add_argument("--label", default="after")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # one child's part
    args = parser.parse_args()
    if args.part:
        import netra_analytics

        result = PARTS[args.part]()
        result["code"] = str(Path(netra_analytics.__file__).parent)
        print(json.dumps(result))
        return
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = args.src
    results = {}
    for part in PARTS:
        out = subprocess.run(
            [sys.executable, "-m", "bench.memory_bench", "--part", part],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        results[part] = json.loads(out.stdout)
        print(part, json.dumps(results[part], indent=1))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"memory-{args.label}.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
