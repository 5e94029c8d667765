"""prompt_analytics rows for a realistic conversation, end to end on the embedded ClickHouse."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from netra_analytics.ingest.process import RequestInfo, process
from netra_analytics.ingest.spool import Spool
from netra_analytics.ingest.writer import SpoolRecord, encode_record
from netra_analytics.prompts.classify import CATEGORIES, INTENTS, default_classifier
from netra_analytics.prompts.complexity import complexity
from netra_analytics.prompts.cost import PriceTable, Tokens
from netra_analytics.prompts.normalise import prompt_hash
from netra_analytics.prompts.quality import Signals
from netra_analytics.prompts.similarity import SimilarityIndex
from netra_analytics.prompts.worker import CONSUMER, PromptAnalyser, PromptWorker, ThreadKey
from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import body, event
from tests.support.processes import wait_until

URL = "/api/analytics/events"
Q1 = "How can I reduce my monthly OpenAI bill?"
Q2 = "And what about caching responses to save money?"


def _post(client: TestClient, events: list[dict[str, Any]], user: str) -> None:
    reply = client.post(
        URL,
        content=orjson.dumps(body(events, user_id=user)),
        headers={"content-type": "application/json"},
    )
    assert reply.status_code == 202 and reply.json()["accepted"] == len(events)


def _prompt(text: str, thread: str, **extra: Any) -> dict[str, Any]:
    props = {"prompt_text": text, "prompt_length": len(text), "thread_id": thread, "message_type": "user_prompt",
             "tokens_consumed": None, "response_time_ms": None, "model_used": None, "response_length": None, **extra}  # fmt: skip
    return event("chat_interaction", **props)


def _answer(thread: str, **extra: Any) -> dict[str, Any]:
    props = {"message_type": "ai_response", "thread_id": thread, "prompt_text": None, "prompt_length": 0,
             "tokens_consumed": None, "model_used": None, **extra}  # fmt: skip
    return event("chat_interaction", **props)


def _rows(store: ChdbStore) -> dict[str, dict[str, Any]]:
    rows = store.query_rows(
        "SELECT *, toString(prompt_id) AS id FROM analytics.prompt_analytics FINAL"
    )
    return {row["id"]: row for row in rows}


def test_a_conversation_fills_every_column(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    client = make_client(event_batch_size=1, event_flush_interval_ms=10)
    p1 = _prompt(Q1, "t-1", tokens_consumed=20, model_used="gpt-4o-mini")
    a1 = _answer(
        "t-1",
        response_time_ms=1200.0,
        response_length=800,
        tokens_consumed=400,
        model_used="gpt-4o-mini-2024-07-18",
    )
    p2 = _prompt(Q2, "t-1", is_follow_up=True, input_tokens=30, cost_cents=0.5)
    a2 = _answer(
        "t-1",
        response_time_ms=20_000.0,
        response_length=300,
        output_tokens=200,
        model_used="gpt-4o-mini",
    )
    feedback = event("feedback_submission", feedback_type="nps", score=9, context_thread_id="t-1")
    done = event("thread_lifecycle", thread_id="t-1", action="completed")
    _post(client, [p1, a1, p2, a2], "alice")
    _post(client, [feedback, done], "alice")
    bob = _prompt("how can i reduce my monthly openai bill", "t-9")
    _post(client, [bob], "bob")
    again = _prompt(Q1 + "!", "t-2")
    _post(client, [again], "alice")

    def settled() -> bool:
        rows = _rows(store)
        return len(rows) == 4 and rows[p1["event_id"]]["response_quality_score"] == 1.0

    wait_until(settled, timeout=30)
    rows = _rows(store)

    first = rows[p1["event_id"]]
    assert (
        first["user_id"] == "alice"
        and first["thread_id"] == "t-1"
        and first["session_id"] == "session-alice"
    )
    assert first["prompt_hash"] == prompt_hash(Q1) and first["prompt_text"] == Q1
    assert first["prompt_category"] in CATEGORIES and first["prompt_intent"] in INTENTS
    assert first["prompt_complexity_score"] == pytest.approx(complexity(Q1), abs=1e-4)
    assert first["follow_up_generated"] is True
    # answered in 1.2 s (+0.1 +0.1), NPS 9 (+0.2), thread completed (+0.15): 1.05, capped
    assert first["response_quality_score"] == 1.0
    assert first["response_relevance_score"] == pytest.approx(0.9)  # 0.6 + NPS 9 + a follow-up
    assert first["estimated_cost_cents"] == pytest.approx((20 * 0.15 + 400 * 0.6) / 1e4, rel=1e-5)
    assert first["actual_cost_cents"] is None
    assert first["is_repeat_question"] is False and first["similar_prompts"] == []
    assert first["model_used"] == "gpt-4o-mini-2024-07-18"

    second = rows[p2["event_id"]]
    assert second["follow_up_generated"] is False
    # answered (+0.1) in 20 s (−0.15), NPS 9 (+0.2), completed (+0.15)
    assert second["response_quality_score"] == pytest.approx(0.8)
    assert second["response_relevance_score"] == pytest.approx(0.8)
    assert second["actual_cost_cents"] == pytest.approx(0.5)
    assert second["estimated_cost_cents"] == pytest.approx((30 * 0.15 + 200 * 0.6) / 1e4, rel=1e-5)

    others = rows[bob["event_id"]]
    assert others["is_repeat_question"] is False  # someone else asked it, not bob
    assert others["similar_prompts"] == [p1["event_id"]]
    assert others["response_quality_score"] == pytest.approx(0.3)  # no answer yet

    repeat = rows[again["event_id"]]
    assert repeat["is_repeat_question"] is True
    assert set(repeat["similar_prompts"]) == {p1["event_id"], bob["event_id"]}


def test_repeats_are_recognised_across_a_restart(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    first = make_client(event_batch_size=1, event_flush_interval_ms=10)
    original = _prompt("Which model is best for extracting invoice fields?", "t-1")
    _post(first, [original], "carol")
    wait_until(lambda: len(_rows(store)) == 1, timeout=30)
    first.__exit__(None, None, None)

    second = make_client(
        event_batch_size=1, event_flush_interval_ms=10
    )  # a new process's worth of state
    asked_again = _prompt("which model is best for extracting invoice fields", "t-5")
    _post(second, [asked_again], "carol")
    wait_until(lambda: len(_rows(store)) == 2, timeout=30)
    row = _rows(store)[asked_again["event_id"]]
    assert row["is_repeat_question"] is True
    assert row["similar_prompts"] == [original["event_id"]]


def test_a_late_signal_after_a_restart_updates_the_stored_prompt(
    make_client: Callable[..., TestClient], store: ChdbStore
) -> None:
    first = make_client(event_batch_size=1, event_flush_interval_ms=10)
    asked = _prompt(
        "Why is our p99 latency so high?", "t-r", tokens_consumed=10, model_used="gpt-4o"
    )
    answer = _answer(
        "t-r", response_time_ms=900.0, response_length=500, tokens_consumed=100, model_used="gpt-4o"
    )
    _post(first, [asked, answer], "dave")
    wait_until(
        lambda: _rows(store).get(asked["event_id"], {}).get("response_quality_score") == 0.7,
        timeout=30,
    )
    first.__exit__(None, None, None)

    second = make_client(
        event_batch_size=1, event_flush_interval_ms=10
    )  # the thread is no longer in memory
    liked = event("feedback_submission", feedback_type="csat", score=5, context_thread_id="t-r")
    _post(second, [liked], "dave")
    # answered fast (0.5 + 0.1 + 0.1) and CSAT 5 (+0.25): the answer's signals survived the restart
    wait_until(
        lambda: _rows(store)[asked["event_id"]]["response_quality_score"] == 0.95, timeout=30
    )
    row = _rows(store)[asked["event_id"]]
    assert row["response_relevance_score"] == pytest.approx(0.8)
    assert row["estimated_cost_cents"] > 0 and row["model_used"] == "gpt-4o"
    count = store.query_rows("SELECT count() AS n FROM analytics.prompt_analytics FINAL")[0]["n"]
    assert count == 1  # re-written, not duplicated


def test_signals_json_keys_are_unique_for_the_reports_simple_json_reads() -> None:
    """Migration 0010 computes prompt_analytics columns from `signals` with simpleJSON*, which
    takes the first occurrence of a key anywhere: every key it reads must occur once."""
    keys = [f.name for f in dataclasses.fields(Signals)] + [
        f.name for f in dataclasses.fields(Tokens)
    ]
    keys += ["signals", "tokens", "answered_at_ms"]
    assert len(keys) == len(set(keys)), keys
    for read in ("output", "response_time_ms", "responded", "errors_after"):
        assert read in keys


def test_a_chunk_loads_the_threads_it_does_not_hold_in_one_lookup() -> None:
    calls: list[list[ThreadKey]] = []

    def load(keys: list[ThreadKey]) -> dict[ThreadKey, list[Any]]:
        calls.append(keys)
        return {}

    analyser = PromptAnalyser(default_classifier(), SimilarityIndex(), load)
    events = [_prompt(Q1, f"t-{n}") for n in range(30)] + [_answer("t-3"), _prompt(Q2, "t-3")]
    batch = process(orjson.dumps(body(events)), RequestInfo(received_at=datetime.now(UTC)))
    record = SpoolRecord(1.0, [(e.event_id, "user-1", e.row) for e in batch.accepted], [])
    prompts = analyser.analyse([(1, record)])
    assert calls == [sorted(("user-1", f"t-{n}") for n in range(30))]
    assert len(prompts) == 31
    analyser.analyse([(2, record)])  # threads now in memory: no lookup
    assert len(calls) == 1


def test_what_one_commit_stored_is_analysed_into_one_insert(
    store: ChdbStore, tmp_path: Path
) -> None:
    """The worker reads in chunks of 50 records but inserts once per commit of the writer
    (one part per table, not one per chunk), every prompt of every chunk in it."""

    async def scenario() -> None:
        spool = Spool(tmp_path, max_bytes=1 << 24)
        await _stored_prompts(spool, 180, "chunks")  # 4 chunks, one prompt each
        worker = PromptWorker(spool, store, prices=PriceTable.load(), chunk=50)
        await _analyse_all(worker, spool, seconds=30)
        assert (worker.rows_written, worker.inserts) == (180, 1)
        [stored] = store.query_rows("SELECT count() AS n FROM analytics.prompt_analytics")
        assert int(stored["n"]) == 180
        spool.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("events_per_record", "chunk", "chunk_events", "lookups"),
    [
        (1, 500, None, 3),  # 1,200 records: chunks of 500, 500, 200
        (1, 5000, 10_000, 1),  # the analysis process's bounds: all of one commit at once
        (1, 5000, 300, 4),  # 300 events: 300 records
        (20, 5000, 200, 6),  # 60 records of 20 events: 10 records a chunk
        (20, 25, 10_000, 3),  # the record bound first
    ],
)
def test_a_chunk_is_bounded_by_records_and_by_events(
    store: ChdbStore, tmp_path: Path, events_per_record: int, chunk: int,
    chunk_events: int | None, lookups: int,
) -> None:  # fmt: skip
    """Each analysis call (chunk) looks the new threads up in the store once: the chunk's
    bounds decide how many lookups a commit costs, and every prompt is analysed either way."""
    records = 1200 // events_per_record
    calls: list[int] = []

    class CountingWorker(PromptWorker):
        def _load_thread(self, keys: list[ThreadKey]) -> dict[ThreadKey, list[Any]]:
            calls.append(len(keys))
            return super()._load_thread(keys)

    async def scenario() -> None:
        spool = Spool(tmp_path, max_bytes=1 << 26)
        await _stored_prompts(spool, records, "bounds", events_per_record)
        worker = CountingWorker(
            spool, store, prices=PriceTable.load(), chunk=chunk, chunk_events=chunk_events,
            duty=1.0,
        )  # fmt: skip
        await _analyse_all(worker, spool, seconds=60)
        assert worker.rows_written == records
        assert len(calls) == lookups and sum(calls) == records
        spool.close()

    asyncio.run(scenario())


async def _stored_prompts(
    spool: Spool, records: int, prefix: str, events_per_record: int = 1
) -> None:
    """`records` spool records, each a request of its own user with one prompt on a thread of
    its own and `events_per_record - 1` feature_usage events, committed as the writer does once
    it has stored them."""
    info = RequestInfo(received_at=datetime.now(UTC))
    for n in range(records):
        user = f"{prefix}-{n}"
        events = [_prompt(f"question {n}?", f"t{n}")]
        events += [event("feature_usage") for _ in range(events_per_record - 1)]
        batch = process(orjson.dumps(body(events, user_id=user)), info)
        record = SpoolRecord(
            info.received_at.timestamp(), [(e.event_id, user, e.row) for e in batch.accepted], []
        )
        await spool.append(encode_record(record))
    spool.commit(spool.durable_end)


async def _analyse_all(worker: PromptWorker, spool: Spool, *, seconds: float) -> None:
    """Run `worker` until it has analysed everything committed (at most `seconds`), then stop it."""
    task = asyncio.create_task(worker.run())
    deadline = asyncio.get_running_loop().time() + seconds
    while spool.consumer_offset(CONSUMER) < spool.checkpoint:
        if asyncio.get_running_loop().time() >= deadline:
            break
        await asyncio.sleep(0.02)
    await worker.stop(task)
