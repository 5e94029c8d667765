"""The batch writer: moves spooled events into ClickHouse, each exactly once.

Flush rule: a flush starts as soon as `batch_size` events are waiting or the oldest waiting
event has waited `flush_interval` (`EVENT_BATCH_SIZE`, `EVENT_FLUSH_INTERVAL_MS`), and takes
everything waiting up to `max_batch_events`: under load batches grow by themselves, so
ClickHouse sees fewer, larger inserts.

Exactly once: before inserting, the writer asks ClickHouse which of the batch's event ids it
already holds (by user and event id, which the primary key and a bloom-filter index answer
quickly) and inserts only the others, with an `insert_deduplication_token` derived from them
and `deduplicate_blocks_in_dependent_materialized_views`, so a retried block is also dropped by
ClickHouse, in `frontend_events` and in the materialized view. The checkpoint moves only after
the insert succeeded, so a crash at any point replays records the lookup then filters out, and
a client that retries with the same `event_id` is not counted twice.

Failures: any store error keeps the batch, waits with exponential backoff (jittered, capped at
30 s) and tries again; new events keep arriving in the spool meanwhile. `stop()` flushes what is
waiting; if the store is still down when its deadline passes, the events stay in the spool for
the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterable

import msgspec

from netra_analytics import metrics
from netra_analytics.ingest.spool import Record, Spool
from netra_analytics.store.base import Store

log = logging.getLogger(__name__)

LOOKUP_CHUNK = 5000  # ids per lookup query: keeps the parameters far below URL limits


class SpoolRecord(msgspec.Struct, array_like=True):
    """What one request leaves in the spool."""

    received_at: float  # unix seconds
    events: list[tuple[str, str, bytes]]  # (event_id, user_id, frontend_events JSON line)
    rejected: list[bytes]  # rejected_events JSON lines


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(SpoolRecord)


def encode_record(record: SpoolRecord) -> bytes:
    return _encoder.encode(record)


@dataclasses.dataclass
class WriterState:
    events_written: int = 0
    duplicates_skipped: int = 0
    batches_written: int = 0
    last_success: float | None = None  # unix seconds
    last_error: str | None = None
    consecutive_failures: int = 0


class BatchWriter:
    def __init__(
        self,
        spool: Spool,
        store: Store,
        *,
        batch_size: int,
        flush_interval: float,
        max_batch_events: int = 20_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._spool = spool
        self._store = store
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_batch_events = max(max_batch_events, batch_size)
        self._clock = clock
        self._read_position = spool.checkpoint
        self._staged: list[tuple[Record, SpoolRecord]] = []
        self._staged_events = 0
        self._stopping = asyncio.Event()
        self._deadline: float | None = None
        self.state = WriterState()

    async def run(self) -> None:
        backoff = 0.0
        while True:
            self._spool.new_data.clear()
            await self._stage_available()
            if self._staged and (self._due() or self._stopping.is_set()):
                if await self._flush():
                    backoff = 0.0
                    continue
                backoff = min(30.0, max(0.2, backoff * 2))
                if self._past_deadline():
                    return
                await self._wait(backoff * random.uniform(0.8, 1.2))
                continue
            if self._stopping.is_set() and self._read_position >= self._spool.durable_end:
                return
            await self._wait(self._time_until_due())

    async def stop(self, task: asyncio.Task[None], timeout: float) -> None:
        """Flush what is waiting, for at most `timeout` seconds, then return."""
        self._deadline = self._clock() + timeout
        self._stopping.set()
        self._spool.new_data.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout + 1)
        except TimeoutError:
            task.cancel()

    @property
    def pending_events(self) -> int:
        return self._staged_events

    # --- internals ---------------------------------------------------------------------------

    async def _stage_available(self) -> None:
        """Read durable records into the next batch until caught up or the batch is full."""
        while (
            self._staged_events < self._max_batch_events
            and self._read_position < self._spool.durable_end
        ):
            records = await asyncio.to_thread(self._spool.read, self._read_position, 256)
            for record in records:
                decoded = _decoder.decode(record.payload)
                self._staged.append((record, decoded))
                self._staged_events += len(decoded.events) + len(decoded.rejected)
                self._read_position = record.end
                if self._staged_events >= self._max_batch_events:
                    break

    def _due(self) -> bool:
        if self._staged_events >= self._batch_size:
            return True
        oldest = self._staged[0][1].received_at
        return self._clock() - oldest >= self._flush_interval

    def _time_until_due(self) -> float | None:
        if not self._staged:
            return None
        return max(0.0, self._staged[0][1].received_at + self._flush_interval - self._clock())

    def _past_deadline(self) -> bool:
        return self._deadline is not None and self._clock() >= self._deadline

    async def _wait(self, timeout: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._spool.new_data.wait(), timeout)

    async def _flush(self) -> bool:
        batch = self._staged
        started = time.perf_counter()
        try:
            inserted, skipped = await asyncio.to_thread(self._insert, [r for _, r in batch])
        except Exception as exc:
            self.state.consecutive_failures += 1
            self.state.last_error = str(exc)
            metrics.STORE_WRITE_FAILURES.inc()
            if self.state.consecutive_failures == 1 or self.state.consecutive_failures % 20 == 0:
                log.warning(
                    "store write failed; events stay in the spool and will be retried",
                    extra={"error": str(exc), "failures": self.state.consecutive_failures},
                )
            return False
        self._spool.commit(batch[-1][0].end)
        now = self._clock()
        for _, record in batch:
            metrics.PROCESSING_LATENCY.observe(max(0.0, now - record.received_at))
        metrics.EVENTS_WRITTEN.inc(inserted)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        self._staged = []
        self._staged_events = 0
        self.state.events_written += inserted
        self.state.duplicates_skipped += skipped
        self.state.batches_written += 1
        self.state.last_success = now
        self.state.last_error = None
        self.state.consecutive_failures = 0
        return True

    def _insert(self, records: list[SpoolRecord]) -> tuple[int, int]:
        """Insert the events not stored yet; return (inserted, skipped as duplicates)."""
        unique: dict[str, tuple[str, bytes]] = {}
        for record in records:
            for event_id, user_id, line in record.events:
                unique.setdefault(event_id, (user_id, line))
        stored = self._already_stored(unique)
        fresh = [
            (event_id, line) for event_id, (_, line) in unique.items() if event_id not in stored
        ]
        total = sum(len(r.events) for r in records)
        if fresh:
            self._store.insert_json_rows(
                "frontend_events",
                b"\n".join(line for _, line in fresh),
                settings=_dedup_settings(event_id for event_id, _ in fresh),
            )
        rejected = [line for record in records for line in record.rejected]
        if rejected:
            self._store.insert_json_rows(
                "rejected_events",
                b"\n".join(rejected),
                settings=_dedup_settings(hashlib.sha256(line).hexdigest() for line in rejected),
            )
        return len(fresh), total - len(fresh)

    def _already_stored(self, events: dict[str, tuple[str, bytes]]) -> set[str]:
        stored: set[str] = set()
        ids = list(events)
        for start in range(0, len(ids), LOOKUP_CHUNK):
            chunk = ids[start : start + LOOKUP_CHUNK]
            users = sorted({events[event_id][0] for event_id in chunk})
            rows = self._store.query_rows(LOOKUP_STORED_IDS, {"users": users, "ids": chunk})
            stored.update(row["stored_id"] for row in rows)
        return stored


# The alias must not be `event_id`: ClickHouse lets WHERE see SELECT aliases, and the string
# would shadow the UUID column.
LOOKUP_STORED_IDS = """
SELECT toString(event_id) AS stored_id
FROM analytics.frontend_events
WHERE user_id IN {users:Array(String)}
  AND event_id IN {ids:Array(UUID)}
"""


def _dedup_settings(keys: Iterable[str]) -> dict[str, str]:
    digest = hashlib.sha256()
    for key in keys:
        digest.update(key.encode())
        digest.update(b"\n")
    return {
        "insert_deduplication_token": digest.hexdigest(),
        "deduplicate_blocks_in_dependent_materialized_views": "1",
    }
