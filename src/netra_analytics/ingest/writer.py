"""The batch writer: moves spooled events into ClickHouse, each exactly once.

Flush rule: a flush starts as soon as `batch_size` events are waiting or the oldest waiting
event has waited `flush_interval` (`EVENT_BATCH_SIZE`, `EVENT_FLUSH_INTERVAL_MS`), and takes
everything waiting up to `max_batch_events`: under load batches grow by themselves, so
ClickHouse sees fewer, larger inserts. A full batch also waits until `min_insert_interval`
has passed since the previous flush began (`ANALYTICS_MIN_INSERT_INTERVAL_MS`, 1 s; the age
rule is never delayed by it), unless it holds `max_batch_events` (a backlog: it cannot grow,
and waiting would cap the writer at that many events per interval). ClickHouse advises
"around one insert query per second" (clickhouse.com/docs/optimize/bulk-inserts), as each
insert writes a part to every table and view it reaches, and parts cost files and merges.
Measured with the embedded store on this project's machine: an insert of 424 events took
106 ms, 5,000 events 180 ms; at one event per request, with a flush per ~400 events, creating
part files was a fifth of the machine's CPU.

Exactly once, in `frontend_events` and in the materialized view that follows it:

1. Prepare: ask ClickHouse which of the batch's events it already holds, by user and event id
   together (client retries, earlier runs), and leave those out, as well as later copies within
   the batch; an id the same user already used for an event of other content, stored or earlier
   in the batch, is a conflict, reported in `rejected_events` as `duplicate_event_id`. A known
   bot's events go to `bot_events` instead of `frontend_events`. The batch is then fixed: its
   spool range, the events left out, and a deduplication token computed from its content.
2. Write the batch's description to the spool's in-flight file (fsync) before inserting.
3. Insert with `insert_deduplication_token` and
   `deduplicate_blocks_in_dependent_materialized_views`, retrying the *same* batch until it
   succeeds, then move the checkpoint past it.

ClickHouse commits the table's part before the view's, so an insert cut short (a crash, a
dropped connection) can leave an event in the table but not in the view. Repeating the
identical block with the identical token is what repairs that: the table drops the block as a
duplicate and the view receives what it missed. Hence a batch is never re-prepared after a
failure or a crash: on start-up the in-flight batch is rebuilt from the spool and the file, and
retried as it was.

Failures: any store error (or no answer within the store timeout) keeps the batch, waits with
exponential backoff (jittered, capped at 30 s) and tries again; new events keep arriving in the
spool meanwhile and do not cut the wait short, so an outage costs a bounded number of attempts
per minute however busy ingestion is. The outage is logged when it starts, then once a minute
with a count, and when it ends. `stop()` flushes what is waiting; if the store is still down
when its deadline passes, the events stay in the spool for the next start.

Store calls run in the writer's own bounded pool (`StoreCalls`), never in the threads the
spool's fsync or the request handlers use. A spool record whose checksum fails has been
quarantined by the spool; it reaches the writer as an empty record (`Record.payload is None`),
which it steps over.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import msgspec
import orjson

from netra_analytics import metrics
from netra_analytics.errors import public_error
from netra_analytics.ingest.erased import ErasedPeople
from netra_analytics.ingest.process import rejected_row
from netra_analytics.ingest.spool import Record, Spool
from netra_analytics.store.base import ExternalTable, Store
from netra_analytics.store.calls import OutageLog, StoreCalls
from netra_analytics.taxonomy import FieldError

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
LOOKUP_CHUNK = 20_000  # keys per lookup query (a full batch): bounds the table sent with it
ERROR_TEXT_LIMIT = 500  # ClickHouse's messages can quote whole rows: keep logs and health short


class SpoolRecord(msgspec.Struct, array_like=True):
    """What one request leaves in the spool."""

    received_at: float  # unix seconds
    events: list[tuple[str, str, bytes]]  # (event_id, user_id, frontend_events JSON line)
    rejected: list[bytes]  # rejected_events JSON lines
    bot: bool = False  # a known bot sent them: they go to bot_events (records before: False)
    imported: bool = False  # the historical import's: capture times are history, not latency


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(SpoolRecord)


def encode_record(record: SpoolRecord) -> bytes:
    return _encoder.encode(record)


def decode_record(payload: bytes) -> SpoolRecord:
    return _decoder.decode(payload)


def decode_spooled(record: Record, received_at: float) -> SpoolRecord:
    """A spool record decoded; a quarantined one (no payload) as an empty one at `received_at`."""
    if record.payload is None:
        return SpoolRecord(received_at, [], [])
    return _decoder.decode(record.payload)


def next_backoff(previous: float) -> float:
    """Seconds before the next attempt after a failure: doubling from 0.2 s, capped at 30 s.
    Callers apply ±20 % jitter, so that several workers do not retry in step."""
    return min(MAX_BACKOFF_SECONDS, max(0.2, previous * 2))


@dataclasses.dataclass
class WriterState:
    events_written: int = 0
    duplicates_skipped: int = 0
    batches_written: int = 0
    last_success: float | None = None  # unix seconds
    last_error: str | None = None
    consecutive_failures: int = 0


@dataclasses.dataclass(frozen=True)
class PreparedBatch:
    """A batch fixed for insertion: retried as it is until it succeeds."""

    end: int  # spool offset after its last record
    events: list[tuple[str, bytes]]  # (event_id, JSON line) for frontend_events, in spool order
    bot_events: list[tuple[str, bytes]]  # the same for bot_events
    rejected: list[bytes]
    received_at: list[float]
    captured_at: list[float]  # browser events' stored timestamps (unix s), for the latency
    duplicates: int  # events left out: already stored or repeated within the batch
    legacy_token: bool = False  # in flight from a version that deduplicated by event ids


# Why an event of a batch is left out (the third member of an excluded entry).
STORED = "stored"  # the same user's event with this id and the same content is stored: a retry
CONFLICT = "conflict"  # ... with other content: reported in rejected_events


@dataclasses.dataclass(frozen=True)
class Exclusion:
    """What ClickHouse holds under a batch's (event id, user id): why the batch's first event
    with that key is left out, and the stored event's `content_fingerprint` (None in in-flight
    files of earlier versions, whose batches are retried as those versions prepared them)."""

    why: str  # STORED or CONFLICT
    fingerprint: str | None = None


def prepare_batch(
    records: list[SpoolRecord], end: int, excluded: dict[tuple[str, str], Exclusion]
) -> PreparedBatch:
    """The rows to insert: the first occurrence of each (user, event id), minus the excluded.

    `excluded` holds the keys ClickHouse already has; a user id of "" stands for every user
    (in-flight files of earlier versions named ids only). Every occurrence of a key is compared
    by content (`content_fingerprint`) with the event it would repeat, the stored one or else
    the batch's first: the same content is a retry, left out silently; other content is a
    conflict, left out and reported as a `duplicate_event_id` row of rejected_events, whether
    the two arrived in one batch or in two. Deterministic in its arguments, so a batch rebuilt
    from the spool and its in-flight file after a crash is the batch that was being inserted.
    """
    first: dict[tuple[str, str], bytes] = {}  # key -> the batch's first line with it
    events: list[tuple[str, bytes]] = []
    bot_events: list[tuple[str, bytes]] = []
    rejected: list[bytes] = []
    total = 0
    for record in records:
        for event_id, user_id, line in record.events:
            total += 1
            key = (event_id, user_id)
            known = excluded.get(key) or excluded.get((event_id, ""))
            earlier = first.get(key)
            if earlier is None:
                first[key] = line
                if known is None:
                    (bot_events if record.bot else events).append((event_id, line))
                elif known.why == CONFLICT:
                    rejected.append(_conflict_row(record.received_at, line))
                continue
            if known is not None and known.fingerprint is None:
                continue  # prepared by an earlier version, which compared no later occurrence
            reference = known.fingerprint if known is not None else line_fingerprint(earlier)
            if line_fingerprint(line) != reference:
                rejected.append(_conflict_row(record.received_at, line))
        rejected.extend(record.rejected)
    received = [record.received_at for record in records]
    captured = [
        at
        for record in records
        if not record.imported
        for _, _, line in record.events
        if (at := capture_time(line)) is not None
    ]
    kept = len(events) + len(bot_events)
    return PreparedBatch(end, events, bot_events, rejected, received, captured, total - kept)


_TIMESTAMP_KEY = b'"timestamp":"'
_TIMESTAMP_CHARS = len("2026-11-25T10:00:00.000Z")


def capture_time(line: bytes) -> float | None:
    """The stored (skew-corrected) event time of a frontend_events JSON line, as unix seconds:
    read from its fixed place near the line's start (`process._accept` writes `event_id`, then
    `timestamp`), without parsing the line (~1 µs)."""
    at = line.find(_TIMESTAMP_KEY, 0, 120)
    if at < 0:
        return None
    start = at + len(_TIMESTAMP_KEY)
    try:
        return datetime.fromisoformat(line[start : start + _TIMESTAMP_CHARS].decode()).timestamp()
    except ValueError:
        return None


def without_erased(records: list[SpoolRecord], people: ErasedPeople | None) -> list[SpoolRecord]:
    """The records without the events (and rejected rows) of people erased after they were
    received (`ingest.erased`): what a spool still held of them is not stored."""
    if people is None or not people:
        return records
    out = []
    for record in records:
        events = [e for e in record.events if not people.erased(e[1], record.received_at)]
        rejected = [
            line for line in record.rejected
            if not people.erased(str(orjson.loads(line).get("user_id", "")), record.received_at)
        ]  # fmt: skip
        out.append(SpoolRecord(record.received_at, events, rejected, record.bot, record.imported))
    return out


def _conflict_row(received_at: float, line: bytes) -> bytes:
    """A rejected_events row for an event whose id the same user already used for another
    (stored, or received earlier in the same batch)."""
    row = orjson.loads(line)
    message = (
        f"event_id {row['event_id']} was already used by this user for an event of other "
        "content; an event_id must name one event (a retry sends the same event again)"
    )
    event = {
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "timestamp": row["timestamp"],
        "properties": orjson.loads(row["properties"]),
    }
    return rejected_row(
        received_at=datetime.fromtimestamp(received_at, UTC),
        user_id=row["user_id"],
        session_id=row["session_id"],
        event_index=0,
        event_type=row["event_type"],
        reason="duplicate_event_id",
        errors=[FieldError("event_id", message)],
        event=event,
        user_agent=row["user_agent"],
        gtm_container_id=row["gtm_container_id"],
        app_version=row["app_version"],
    )


def content_fingerprint(event_type: str, properties: str) -> str:
    """What makes two events with one id the same event (a retry), as a short hex digest.

    The event type and the properties as the client sent them (sanitised), keys sorted; the
    service's own notes (`_client_timestamp`, ...) and the time are left out, since a retry is
    received, and so corrected, at another moment.
    """
    canonical = orjson.dumps(
        [event_type, _client_properties(properties)], option=orjson.OPT_SORT_KEYS
    )
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def line_fingerprint(line: bytes) -> str:
    """`content_fingerprint` of a frontend_events JSON line."""
    row = orjson.loads(line)
    return content_fingerprint(row["event_type"], row["properties"])


def _client_properties(text: str) -> dict[str, object]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"": text}
    if not isinstance(value, dict):
        return {"": value}
    return {k: v for k, v in value.items() if not k.startswith("_")}


class BatchWriter:
    def __init__(
        self,
        spool: Spool,
        store: Store,
        *,
        batch_size: int,
        flush_interval: float,
        max_batch_events: int = 20_000,
        min_insert_interval: float = 0.0,
        clock: Callable[[], float] = time.time,
        calls: StoreCalls | None = None,
        state: WriterState | None = None,
        erased: ErasedPeople | None = None,
    ) -> None:
        """`calls`: the pool (and timeout) for store calls, by default 1 thread and 30 s (one:
        a call that timed out must end before the next starts, as both write the in-flight file);
        `state`: counters to carry on (a restarted writer keeps its predecessor's); `erased`: the
        people whose events still in the spool must not be stored (`ingest.erased`)."""
        self._spool = spool
        self._store = store
        self._calls = calls or StoreCalls("store-writer", workers=1, timeout=30.0)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_batch_events = max(max_batch_events, batch_size)
        self._min_insert_interval = min(min_insert_interval, flush_interval)
        self._last_flush = -math.inf  # when the previous flush began (`clock`)
        self._clock = clock
        self._read_position = spool.checkpoint
        self._staged: list[tuple[Record, SpoolRecord]] = []
        self._staged_events = 0
        self._prepared: PreparedBatch | None = None
        self._stopping = asyncio.Event()
        self._stop_requested = asyncio.Event()  # wakes a backoff once, when a stop begins
        self._deadline: float | None = None
        self.state = state or WriterState()
        self._outage = OutageLog(log, "store write")
        self._erased = erased

    async def run(self) -> None:
        await self._resume_in_flight()
        backoff = 0.0
        while True:
            self._spool.new_data.clear()
            if self._prepared is None:
                await self._stage_available()
            flush_due = self._staged and (self._due() or self._stopping.is_set())
            if self._prepared is not None or flush_due:
                if await self._flush():
                    backoff = 0.0
                    continue
                backoff = next_backoff(backoff)
                if self._past_deadline():
                    return
                await self._back_off(backoff * random.uniform(0.8, 1.2))
                continue
            if self._stopping.is_set() and self._read_position >= self._spool.durable_end:
                return
            if self._staged_events >= self._batch_size:
                # Full, waiting out the insert interval: new events would only wake it to wait
                # again (a stop does wake it, to flush at once).
                await self._pause(self._time_until_due())
            else:
                await self._wait(self._time_until_due())

    async def stop(self, task: asyncio.Task[None], timeout: float) -> None:
        """Flush what is waiting, for at most `timeout` seconds, then return."""
        self._deadline = self._clock() + timeout
        self._stopping.set()
        self._stop_requested.set()
        self._spool.new_data.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout + 1)
        except TimeoutError:
            task.cancel()
        except Exception:  # the writer died earlier; what it held stays in the spool
            log.exception("the batch writer had stopped on an error; its events stay spooled")

    # --- internals ---------------------------------------------------------------------------

    async def _stage_available(self) -> None:
        """Read durable records into the next batch until caught up or the batch is full."""
        while (
            self._staged_events < self._max_batch_events
            and self._read_position < self._spool.durable_end
        ):
            records = await self._spool.read_async(self._read_position, 256)
            for record in records:
                decoded = decode_spooled(record, self._clock())
                self._staged.append((record, decoded))
                self._staged_events += len(decoded.events) + len(decoded.rejected)
                self._read_position = record.end
                if self._staged_events >= self._max_batch_events:
                    break

    def _due(self) -> bool:
        return self._time_until_due() == 0.0

    def _time_until_due(self) -> float | None:
        """Seconds until a flush is due (0: now); None when nothing waits."""
        if not self._staged:
            return None
        now = self._clock()
        if self._staged_events >= self._max_batch_events:
            # The interval exists to let batches grow; one at its cap cannot, and waiting
            # would cap the service at max_batch_events per interval, however fast the store.
            return 0.0
        until = self._staged[0][1].received_at + self._flush_interval - now
        if self._staged_events >= self._batch_size:
            until = min(until, self._last_flush + self._min_insert_interval - now)
        return max(0.0, until)

    def _past_deadline(self) -> bool:
        return self._deadline is not None and self._clock() >= self._deadline

    async def _wait(self, timeout: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._spool.new_data.wait(), timeout)

    async def _pause(self, seconds: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _back_off(self, seconds: float) -> None:
        """Sleep after a failure. New events do not wake it (they would make every append a
        retry); a stop does, once, and no sleep runs past the stop's deadline."""
        if self._deadline is not None:
            seconds = min(seconds, max(0.0, self._deadline - self._clock()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_requested.wait(), seconds)
        self._stop_requested.clear()

    async def _resume_in_flight(self) -> None:
        """Rebuild the batch a previous run was inserting when it stopped, to retry it as it was."""
        in_flight = self._spool.load_in_flight()
        if in_flight is None:
            return
        end, excluded, file_format = in_flight
        records: list[SpoolRecord] = []
        while self._read_position < end:
            for record in await self._spool.read_async(self._read_position, 256):
                if record.end > end:
                    if record.payload is not None:
                        raise RuntimeError(
                            f"the in-flight batch ends inside a spool record ({end})"
                        )
                    end = record.end  # it ended in what was quarantined since
                records.append(decode_spooled(record, self._clock()))
                self._read_position = record.end
                if record.end == end:
                    break
        prepared = prepare_batch(records, end, _excluded_from_file(excluded))
        # The same token as the interrupted insert, or the table would keep both copies.
        self._prepared = dataclasses.replace(prepared, legacy_token=file_format == 1)
        log.info(
            "retrying the batch in flight at the last stop",
            extra={"events": len(self._prepared.events)},
        )

    async def _flush(self) -> bool:
        started = time.perf_counter()
        self._last_flush = self._clock()
        try:
            if self._prepared is None:
                self._prepared = await self._calls.run(self._prepare)
            prepared = self._prepared
            await self._calls.run(self._insert, prepared)
        except Exception as exc:
            self.state.consecutive_failures += 1
            # Health is public: ClickHouse's text can quote rows, so it shows the kind only.
            self.state.last_error = public_error(exc)
            metrics.STORE_WRITE_FAILURES.inc()
            self._outage.failed(
                str(exc)[:ERROR_TEXT_LIMIT], spool_backlog_bytes=self._spool.backlog_bytes
            )
            return False
        self._spool.commit(prepared.end)
        now = self._clock()
        # One observation per request (receipt) and per browser event (capture), on the loop
        # after the insert, bucketed in one pass (`observe_many`).
        metrics.observe_many(
            metrics.PROCESSING_LATENCY.labels("receipt"),
            [max(0.0, now - received_at) for received_at in prepared.received_at],
        )
        metrics.observe_many(
            metrics.PROCESSING_LATENCY.labels("capture"),
            [max(0.0, now - captured_at) for captured_at in prepared.captured_at],
        )
        metrics.EVENTS_WRITTEN.inc(len(prepared.events))
        metrics.BATCH_EVENTS.observe(len(prepared.events) + len(prepared.bot_events))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        self._prepared = None
        self._staged = []
        self._staged_events = 0
        self.state.events_written += len(prepared.events)
        self.state.duplicates_skipped += prepared.duplicates
        self.state.batches_written += 1
        self.state.last_success = now
        self.state.last_error = None
        self.state.consecutive_failures = 0
        self._outage.succeeded()
        return True

    def _prepare(self) -> PreparedBatch:
        """Fix the staged records as a batch and record it as in flight (runs in a thread)."""
        records = self._kept([decoded for _, decoded in self._staged])
        end = self._staged[-1][0].end
        candidates: dict[tuple[str, str], bytes] = {}
        for record in records:
            for event_id, user_id, line in record.events:
                candidates.setdefault((event_id, user_id), line)
        excluded = self._already_stored(candidates)
        self._spool.save_in_flight(
            end, [[i, u, e.why, e.fingerprint or ""] for (i, u), e in sorted(excluded.items())]
        )
        return prepare_batch(records, end, excluded)

    def _kept(self, records: list[SpoolRecord]) -> list[SpoolRecord]:
        if self._erased is not None:
            self._erased.refresh()
        return without_erased(records, self._erased)

    def _insert(self, batch: PreparedBatch) -> None:
        for table, rows in (("frontend_events", batch.events), ("bot_events", batch.bot_events)):
            if rows:
                self._store.insert_json_rows(
                    table,
                    b"\n".join(line for _, line in rows),
                    # The rows themselves: an event id alone repeats across users.
                    settings=_dedup_settings(
                        event_id.encode() if batch.legacy_token else line for event_id, line in rows
                    ),
                )
        if batch.rejected:
            self._store.insert_json_rows(
                "rejected_events",
                b"\n".join(batch.rejected),
                settings=_dedup_settings(batch.rejected),  # as before: by rows
            )

    def _already_stored(
        self, candidates: dict[tuple[str, str], bytes]
    ) -> dict[tuple[str, str], Exclusion]:
        """Which (event id, user id) pairs ClickHouse already holds, each STORED or CONFLICT
        by the candidate line's content, with the stored event's fingerprint."""
        found: dict[tuple[str, str], Exclusion] = {}
        keys = list(candidates)
        for start in range(0, len(keys), LOOKUP_CHUNK):
            chunk = keys[start : start + LOOKUP_CHUNK]
            # By columns, one dumps for the chunk: one per key was 5 % of a worker's time under
            # the interpreter lock at a steady 10,000 events/s (py-spy --gil; issue 17).
            table = ExternalTable(
                "batch_keys",
                "user_id String, event_id UUID",
                orjson.dumps([[user for _, user in chunk], [event_id for event_id, _ in chunk]]),
                "JSONCompactColumns",
            )
            for row in self._store.query_rows_with_table(LOOKUP_STORED_IDS, table):
                key = (row["stored_id"], row["user_id"])
                line = candidates.get(key)
                if line is None:  # another user's event with this id: not this one
                    continue
                stored = content_fingerprint(row["event_type"], row["properties"])
                found[key] = Exclusion(
                    STORED if stored == line_fingerprint(line) else CONFLICT, stored
                )
        return found


def _excluded_from_file(entries: list[list[str] | str]) -> dict[tuple[str, str], Exclusion]:
    out: dict[tuple[str, str], Exclusion] = {}
    for entry in entries:
        if isinstance(entry, str):  # written by a version that deduplicated by id alone
            out[(entry, "")] = Exclusion(STORED)
        elif len(entry) == 3:  # format 2: no fingerprint
            event_id, user_id, why = entry
            out[(event_id, user_id)] = Exclusion(why)
        else:
            event_id, user_id, why, fingerprint = entry
            out[(event_id, user_id)] = Exclusion(why, fingerprint or None)
    return out


# The batch's keys travel as a table (`batch_keys`), not as parameters: see ExternalTable.
# Two IN conditions rather than one on the pair, so that the primary key (user_id first) and
# the event_id bloom filter can both skip granules; a pair matched only across users is
# dropped by the caller. GLOBAL: on a cluster the keys are on the node asked. The alias must
# not be `event_id`: ClickHouse lets WHERE see SELECT aliases, and the string would shadow
# the UUID column.
LOOKUP_STORED_IDS = """
SELECT toString(event_id) AS stored_id, user_id, toString(event_type) AS event_type, properties
FROM analytics.frontend_events
WHERE user_id GLOBAL IN (SELECT user_id FROM batch_keys)
  AND event_id GLOBAL IN (SELECT event_id FROM batch_keys)
UNION ALL
SELECT toString(event_id) AS stored_id, user_id, toString(event_type) AS event_type, properties
FROM analytics.bot_events
WHERE user_id GLOBAL IN (SELECT user_id FROM batch_keys)
  AND event_id GLOBAL IN (SELECT event_id FROM batch_keys)
"""


def _dedup_settings(keys: Iterable[bytes]) -> dict[str, str]:
    digest = hashlib.sha256()
    for key in keys:
        digest.update(key)
        digest.update(b"\n")
    return {
        "insert_deduplication_token": digest.hexdigest(),
        "deduplicate_blocks_in_dependent_materialized_views": "1",
        # The views of frontend_events (seven) are filled side by side, not one after another:
        # a 17,000-event insert took 191-224 ms instead of 239-304 ms with a core to spare
        # (embedded, three alternating runs of seven batches; issue 17, bench/README "Sixth
        # pass"), which is what the writers have while they drain a backlog.
        "parallel_view_processing": "1",
    }
