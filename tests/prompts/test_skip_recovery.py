"""A prompt worker that fell more than the spool's cap behind: moved up to the writer, it says
so and recovers the prompts it skipped from frontend_events (real chDB, real spool)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from netra_analytics.ingest.process import RequestInfo, process
from netra_analytics.ingest.spool import Spool
from netra_analytics.ingest.writer import BatchWriter, SpoolRecord, encode_record
from netra_analytics.prompts.cost import PriceTable
from netra_analytics.prompts.worker import RECOVERY_NOTE, PromptWorker
from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import body, event

CAP = 40_000  # bytes of spool


def _prompts(user: str, n: int) -> SpoolRecord:
    events = []
    for i in range(n):
        text = f"question {user} {i}: how do I cut the cost of model {i % 7} for batch jobs?"
        events.append(event("chat_interaction", message_type="user_prompt", prompt_text=text,
                            prompt_length=len(text), thread_id=f"{user}-t{i % 3}"))  # fmt: skip
        events.append(event("chat_interaction", message_type="ai_response", thread_id=f"{user}-t{i % 3}",
                            prompt_text=None, prompt_length=0, response_time_ms=900.0,
                            response_length=400))  # fmt: skip
    info = RequestInfo(received_at=datetime.now(UTC))
    start = info.received_at - timedelta(minutes=1)
    for k, e in enumerate(events):  # an answer comes a second after its prompt
        e["timestamp"] = (start + timedelta(seconds=k)).isoformat()
    batch = process(orjson.dumps(body(events, user_id=user)), info)
    assert not batch.rejected
    return SpoolRecord(
        info.received_at.timestamp(), [(e.event_id, user, e.row) for e in batch.accepted], []
    )


async def _store_all(spool: Spool, store: ChdbStore, records: list[SpoolRecord]) -> None:
    """Append and store records, the writer keeping the spool under its cap."""
    writer = BatchWriter(spool, store, batch_size=1, flush_interval=0.01)
    task = asyncio.create_task(writer.run())
    for record in records:
        await spool.append(encode_record(record))
        while spool.checkpoint < spool.durable_end:
            spool.committed.clear()
            await asyncio.wait_for(spool.committed.wait(), 10)
    await writer.stop(task, timeout=5)


def test_a_worker_over_the_cap_skips_says_so_and_recovers_the_prompts(
    store: ChdbStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = [_prompts(f"user{u}", 6) for u in range(12)]
    asked = {e[0] for r in records for e, line in zip(r.events, r.events, strict=True)
             if b'"user_prompt"' in line[2]}  # fmt: skip
    assert len(asked) == 72

    async def scenario() -> PromptWorker:
        spool = Spool(tmp_path, max_bytes=CAP)
        assert spool.consumer_offset("prompts") == 0  # the prompt worker has read nothing
        await _store_all(spool, store, records)
        assert spool.consumer_over_cap("prompts")
        worker = PromptWorker(spool, store, prices=PriceTable.load(None), duty=1.0)
        task = asyncio.create_task(worker.run())
        for _ in range(600):
            if worker.prompts_recovered >= len(asked) and not worker.recovery:
                break
            await asyncio.sleep(0.05)
        await worker.stop(task)
        assert spool.read_note(RECOVERY_NOTE) == b"[]"
        assert spool.consumer_offset("prompts") == spool.checkpoint
        spool.close()
        return worker

    with caplog.at_level(logging.WARNING):
        worker = asyncio.run(scenario())
    status = worker.status()
    assert status["skipped_spool_bytes"] > CAP
    assert status["prompts_recovered"] == len(asked)
    assert status["status"] == "ok" and status["recovery_windows"] == []
    assert any("fell more than the spool's cap behind" in r.message for r in caplog.records)
    rows = store.query_rows(
        "SELECT toString(prompt_id) AS id, answer_response_time_ms, prompt_text "
        "FROM analytics.prompt_analytics FINAL"
    )
    assert {row["id"] for row in rows} == asked
    # Each recovered prompt got its answer, read back from frontend_events too.
    assert all(row["answer_response_time_ms"] == 900.0 for row in rows)
    assert all(row["prompt_text"].startswith("question ") for row in rows)
