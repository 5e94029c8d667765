"""The prompt analyser's threads in memory: bounded in bytes, whatever the prompts' length, and
transparent: an analyser that keeps almost nothing, loading threads back from what it stored,
writes the same rows as one that keeps everything."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from netra_analytics.ingest.process import RequestInfo, process
from netra_analytics.ingest.writer import SpoolRecord
from netra_analytics.prompts.classify import default_classifier
from netra_analytics.prompts.cost import PriceTable
from netra_analytics.prompts.similarity import SimilarityIndex
from netra_analytics.prompts.worker import (
    FEEDBACK_PER_PROMPT,
    PROMPT_BYTES,
    PROMPTS_PER_THREAD,
    Prompt,
    PromptAnalyser,
    ThreadKey,
    thread_bytes,
)
from tests.factories import body, event

T0 = datetime.now(UTC) - timedelta(hours=1)
WORDS = ["cost", "cache", "tokens", "model", "budget", "latency", "prompt", "bill", "gpu", "plan"]


class StoredThreads:
    """What `prompt_analytics` would hold: the latest version of each prompt, by thread."""

    def __init__(self) -> None:
        self.threads: dict[ThreadKey, dict[str, Prompt]] = {}

    def store(self, prompts: list[Prompt]) -> None:
        for prompt in prompts:
            thread = self.threads.setdefault((prompt.user_id, prompt.thread_id), {})
            thread[prompt.prompt_id] = copy.deepcopy(prompt)

    def load(self, keys: list[ThreadKey]) -> dict[ThreadKey, list[Prompt]]:
        return {
            key: [copy.deepcopy(p) for p in sorted(thread.values(), key=lambda p: p.timestamp_ms)]
            for key in keys
            if (thread := self.threads.get(key))
        }


def _record(n: int, user: str, events: list[dict[str, Any]]) -> SpoolRecord:
    at = T0 + timedelta(seconds=n)
    for i, e in enumerate(events):
        e["timestamp"] = (at + timedelta(milliseconds=i)).isoformat()
    batch = process(orjson.dumps(body(events, user_id=user)), RequestInfo(received_at=at))
    assert not batch.rejected
    return SpoolRecord(at.timestamp(), [(e.event_id, user, e.row) for e in batch.accepted], [])


def _events(draw: st.DrawFn, errors: bool) -> list[dict[str, Any]]:
    thread = f"t-{draw(st.integers(0, 5))}"
    kinds = ["prompt", "answer", "feedback", "end"] + (["error"] * errors)
    events = []
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=4)):
        if kind == "prompt":
            words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=8))
            length = draw(st.sampled_from([0, 0, 0, 3000, 20_000]))  # now and then a long one
            text = " ".join(words) + " x" * (length // 2)
            events.append(event("chat_interaction", thread_id=thread, prompt_text=text,
                                prompt_length=len(text)))  # fmt: skip
        elif kind == "answer":
            events.append(event("chat_interaction", message_type="ai_response", thread_id=thread,
                                prompt_text=None, response_length=draw(st.integers(0, 900))))  # fmt: skip
        elif kind == "feedback":
            events.append(event("feedback_submission", context_thread_id=thread,
                                score=draw(st.integers(0, 10))))  # fmt: skip
        elif kind == "end":
            events.append(event("thread_lifecycle", thread_id=thread,
                                action=draw(st.sampled_from(["completed", "abandoned"]))))  # fmt: skip
        else:
            events.append(event("error_tracking"))
    return events


@st.composite
def traffic(draw: st.DrawFn, errors: bool = False) -> list[SpoolRecord]:
    """Requests of a few users on a few threads each, in time order."""
    count = draw(st.integers(1, 40))
    return [
        _record(n, f"user-{draw(st.integers(0, 3))}", _events(draw, errors)) for n in range(count)
    ]


def _check_bounds(analyser: PromptAnalyser) -> None:
    threads = analyser._threads
    assert analyser.held_bytes == sum(thread_bytes(t) for t in threads.values())
    assert analyser.held_bytes <= analyser.max_bytes
    cached = {id(p) for thread in threads.values() for p in thread}
    assert all(id(p) in cached for p in analyser._sessions.values())
    for thread in threads.values():
        assert len(thread) <= PROMPTS_PER_THREAD
        assert all(len(p.signals.feedback) <= FEEDBACK_PER_PROMPT for p in thread)


@settings(max_examples=40, deadline=None)
@given(records=traffic(errors=True), budget=st.sampled_from([1, 4_000, 40_000, 400_000]))
def test_the_cache_stays_within_its_bytes_and_its_sessions_within_the_cache(
    records: list[SpoolRecord], budget: int
) -> None:
    stored = StoredThreads()
    analyser = PromptAnalyser(default_classifier(), SimilarityIndex(), stored.load,
                              max_bytes=budget)  # fmt: skip
    for n, record in enumerate(records):
        stored.store(analyser.analyse([(n, record)]))
        _check_bounds(analyser)


@settings(max_examples=40, deadline=None)
@given(records=traffic())
def test_an_analyser_that_keeps_nothing_writes_what_one_that_keeps_everything_writes(
    records: list[SpoolRecord],
) -> None:
    """Errors are left out: which prompt an error counts against is kept for cached threads
    only (`_sessions`), by design."""
    prices = PriceTable.load()
    rows: list[list[list[dict[str, Any]]]] = []
    for budget in (1, 1 << 30):
        stored = StoredThreads()
        analyser = PromptAnalyser(default_classifier(), SimilarityIndex(), stored.load,
                                  max_bytes=budget)  # fmt: skip
        written = []
        for n, record in enumerate(records):
            touched = analyser.analyse([(n, record)])
            stored.store(touched)
            written.append(sorted((p.row(prices) for p in touched), key=lambda r: r["prompt_id"]))
        rows.append(written)
    assert rows[0] == rows[1]


def test_a_long_prompt_costs_its_length() -> None:
    stored = StoredThreads()
    analyser = PromptAnalyser(default_classifier(), SimilarityIndex(), stored.load,
                              max_bytes=1 << 20)  # fmt: skip
    text = "why " * 16_000  # 64,000 characters: the longest a prompt may be is 65,536
    record = _record(0, "user-1", [event("chat_interaction", thread_id="t-long", prompt_text=text,
                                         prompt_length=len(text))])  # fmt: skip
    analyser.analyse([(0, record)])
    one = analyser.held_bytes
    assert one >= len(text) + PROMPT_BYTES
    # Sixteen more such threads cannot all stay: 1 MiB holds 15 of them.
    for n in range(1, 17):
        analyser.analyse([(n, _record(n, "user-1", [event(
            "chat_interaction", thread_id=f"t-{n}", prompt_text=text, prompt_length=len(text))]))])  # fmt: skip
    assert analyser.sizes()["threads"] == (1 << 20) // one == 15
    assert ("user-1", "t-long") not in analyser._threads  # the least recently used left first
