"""The batch writer against the real embedded ClickHouse: batching, duplicates, and the repair
of a view left behind by an insert cut short."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netra_analytics.ingest.process import RequestInfo, process
from netra_analytics.ingest.spool import Spool
from netra_analytics.ingest.writer import (
    CONFLICT,
    STORED,
    BatchWriter,
    Exclusion,
    SpoolRecord,
    _dedup_settings,
    _excluded_from_file,
    encode_record,
    line_fingerprint,
    prepare_batch,
)
from netra_analytics.store.chdb_backend import ChdbStore
from tests.factories import body, event

INFO = RequestInfo(received_at=datetime.now(UTC))


def _record(n: int, user: str = "writer-user") -> SpoolRecord:
    batch = process(
        orjson.dumps(body([event("chat_interaction") for _ in range(n)], user_id=user)), INFO
    )
    return SpoolRecord(
        INFO.received_at.timestamp(),
        [(e.event_id, user, e.row) for e in batch.accepted],
        [r.row for r in batch.rejected],
    )


async def _spool(spool: Spool, records: list[SpoolRecord]) -> None:
    for record in records:
        await spool.append(encode_record(record))


VIEWS = ("user_analytics_summary", "activity_rollup")


def _counts(store: ChdbStore) -> tuple[int, int]:
    """Events stored, and events counted by the views (each view must agree, else -1)."""
    [events] = store.query_rows("SELECT count() AS n FROM analytics.frontend_events")
    [summary] = store.query_rows(
        "SELECT sum(total_events) AS n FROM analytics.user_analytics_summary"
    )
    [rollup] = store.query_rows(
        "SELECT sumIf(total_events, resolution = 'day') AS days, "
        "sumIf(total_events, resolution = 'quarter_hour') AS quarters "
        "FROM analytics.activity_rollup"
    )
    totals = {int(summary["n"]), int(rollup["days"]), int(rollup["quarters"])}
    return int(events["n"]), totals.pop() if len(totals) == 1 else -1


async def _run_until_drained(writer: BatchWriter, spool: Spool) -> None:
    task = asyncio.create_task(writer.run())
    for _ in range(400):
        if spool.checkpoint == spool.durable_end and spool.load_in_flight() is None:
            break
        await asyncio.sleep(0.025)
    await writer.stop(task, timeout=5)


def _started_writer(
    store: ChdbStore,
    tmp_path: Path,
    *,
    batch_size: int,
    flush_interval: float,
    min_insert_interval: float = 0.0,
) -> tuple[Spool, BatchWriter, asyncio.Task[None]]:
    """A spool in `tmp_path` and a writer on it, running (call inside the event loop)."""
    spool = Spool(tmp_path, max_bytes=1 << 24)
    writer = BatchWriter(
        spool, store, batch_size=batch_size, flush_interval=flush_interval,
        min_insert_interval=min_insert_interval,
    )  # fmt: skip
    return spool, writer, asyncio.create_task(writer.run())


def test_batches_wait_for_size_or_interval(store: ChdbStore, tmp_path: Path) -> None:
    async def scenario() -> None:
        spool, writer, task = _started_writer(store, tmp_path, batch_size=50, flush_interval=3600)
        await _spool(spool, [_record(20), _record(20)])
        await asyncio.sleep(0.3)
        assert _counts(store) == (0, 0)  # 40 < 50 and the interval is an hour away
        await _spool(spool, [_record(20)])
        for _ in range(200):
            if _counts(store)[0] == 60:
                break
            await asyncio.sleep(0.025)
        assert _counts(store) == (60, 60)
        await writer.stop(task, timeout=5)  # the state is updated just after the insert returns
        assert writer.state.batches_written == 1
        spool.close()

    asyncio.run(scenario())


def test_the_interval_flushes_a_small_batch(store: ChdbStore, tmp_path: Path) -> None:
    async def scenario() -> None:
        spool, writer, task = _started_writer(
            store, tmp_path, batch_size=10_000, flush_interval=0.2
        )
        await _spool(spool, [_record(3)])
        for _ in range(200):
            if _counts(store)[0] == 3:
                break
            await asyncio.sleep(0.025)
        assert _counts(store) == (3, 3)
        await writer.stop(task, timeout=5)
        spool.close()

    asyncio.run(scenario())


async def _stored(store: ChdbStore, n: int, seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.02)):
        if _counts(store)[0] >= n:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{n} events not stored within {seconds} s: {_counts(store)}")


def test_full_batches_wait_out_the_insert_interval(store: ChdbStore, tmp_path: Path) -> None:
    """Requests arriving one by one, each a full batch: the first is inserted at once, the
    rest together once the interval since that insert has passed, so inserts stay at most one
    per interval (ClickHouse's advice) however many requests come."""

    async def scenario() -> None:
        spool, writer, task = _started_writer(
            store, tmp_path, batch_size=1, flush_interval=3600, min_insert_interval=0.6
        )
        await _spool(spool, [_record(1)])
        await _stored(store, 1)
        for _ in range(8):  # over ~0.25 s, all within the interval
            await _spool(spool, [_record(1)])
            await asyncio.sleep(0.03)
        assert _counts(store)[0] == 1  # the interval since the first insert has not passed
        await _stored(store, 9)
        assert _counts(store) == (9, 9)
        await writer.stop(task, timeout=5)
        assert writer.state.batches_written == 2
        spool.close()

    asyncio.run(scenario())


def test_batches_at_their_cap_do_not_wait_out_the_insert_interval(
    store: ChdbStore, tmp_path: Path
) -> None:
    """A backlog of several full batches is inserted one after another: waiting the interval
    between batches that cannot grow would cap the service at `max_batch_events` per interval
    (20,000 events/s with the defaults, whatever the store could take), while a batch below
    the cap still waits, to grow."""

    async def scenario() -> None:
        spool = Spool(tmp_path, max_bytes=1 << 24)
        await _spool(spool, [_record(2), _record(2), _record(2), _record(2), _record(1)])
        writer = BatchWriter(
            spool, store, batch_size=1, flush_interval=3600, min_insert_interval=3000,
            max_batch_events=4,
        )  # fmt: skip
        task = asyncio.create_task(writer.run())
        await _stored(store, 8)
        await asyncio.sleep(0.3)
        assert _counts(store) == (8, 8)  # the last event, a batch below the cap, waits
        assert writer.state.batches_written == 2
        await writer.stop(task, timeout=5)
        assert _counts(store) == (9, 9)
        spool.close()

    asyncio.run(scenario())


def test_the_insert_interval_never_delays_the_flush_interval(
    store: ChdbStore, tmp_path: Path
) -> None:
    """An interval longer than EVENT_FLUSH_INTERVAL_MS is cut to it: an event waits no longer
    than the flush interval (plus the insert) whatever the insert interval says."""

    async def scenario() -> None:
        spool, writer, task = _started_writer(
            store, tmp_path, batch_size=1, flush_interval=0.3, min_insert_interval=3600
        )
        loop = asyncio.get_running_loop()
        for n in range(1, 4):
            started = loop.time()
            await _spool(spool, [_record(1)])
            await _stored(store, n)
            assert loop.time() - started < 0.3 + 2.0  # the interval, and an insert's time
        await writer.stop(task, timeout=5)
        spool.close()

    asyncio.run(scenario())


def test_a_stop_does_not_wait_out_the_insert_interval(store: ChdbStore, tmp_path: Path) -> None:
    async def scenario() -> None:
        spool, writer, task = _started_writer(
            store, tmp_path, batch_size=1, flush_interval=3600, min_insert_interval=3000
        )
        await _spool(spool, [_record(1)])
        await _stored(store, 1)
        await _spool(spool, [_record(2)])  # full, waiting out 50 minutes
        await asyncio.sleep(0.2)
        assert _counts(store)[0] == 1
        started = asyncio.get_running_loop().time()
        await writer.stop(task, timeout=5)
        assert asyncio.get_running_loop().time() - started < 4
        assert _counts(store) == (3, 3)
        spool.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("missed", [VIEWS, VIEWS[1:]])
def test_a_view_missing_an_inserted_batch_is_repaired_on_restart(
    store: ChdbStore, tmp_path: Path, missed: tuple[str, ...], legacy: bool
) -> None:
    """The crash window: ClickHouse committed the table's part, not yet (all) the views',
    and the process died before moving the checkpoint. Detaching views reproduces that state;
    a view that did get the block must not count it twice. `legacy`: the batch was in flight
    under a version that named the batch by event ids (its in-flight file has no format)."""

    async def scenario() -> None:
        spool = Spool(tmp_path, max_bytes=1 << 24)
        records = [_record(30), _record(25)]
        await _spool(spool, records)
        spool.save_in_flight(spool.durable_end, [])
        lines = [line for r in records for _, _, line in r.events]
        ids = [event_id.encode() for r in records for event_id, _, _ in r.events]
        if legacy:
            (tmp_path / "in_flight.json").write_text(
                json.dumps({"end": spool.durable_end, "excluded": []})
            )
        for view in missed:
            store.execute(f"DETACH TABLE analytics.{view}")
        try:
            store.insert_json_rows(
                "frontend_events",
                b"\n".join(lines),
                settings=_dedup_settings(ids if legacy else lines),
            )
        finally:
            for view in missed:
                store.execute(f"ATTACH TABLE analytics.{view}")
        assert _counts(store) == (55, 0 if len(missed) == 2 else -1)
        spool.close()

        restarted = Spool(tmp_path, max_bytes=1 << 24)
        writer = BatchWriter(restarted, store, batch_size=1, flush_interval=0.01)
        await _run_until_drained(writer, restarted)
        assert _counts(store) == (55, 55)
        assert restarted.load_in_flight() is None
        restarted.close()

    asyncio.run(scenario())


def test_events_already_stored_are_left_out(store: ChdbStore, tmp_path: Path) -> None:
    async def scenario() -> None:
        spool = Spool(tmp_path, max_bytes=1 << 24)
        record = _record(10)
        await _spool(spool, [record, record])  # a client retry of the whole request
        writer = BatchWriter(spool, store, batch_size=1, flush_interval=0.01)
        await _run_until_drained(writer, spool)
        await _spool(spool, [record])  # and once more, after the first copy was stored
        writer = BatchWriter(spool, store, batch_size=1, flush_interval=0.01)
        await _run_until_drained(writer, spool)
        assert _counts(store) == (10, 10)
        spool.close()

    asyncio.run(scenario())


def test_arrivals_do_not_cut_the_backoff_short(
    store: ChdbStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """While inserts fail (the table detached: the store refuses them), events keep arriving a
    hundred times a second; the writer still waits out its backoff between attempts and logs
    the outage once. Once the table is back, everything is stored once."""

    async def scenario() -> BatchWriter:
        spool = Spool(tmp_path, max_bytes=1 << 26)
        writer = BatchWriter(spool, store, batch_size=1, flush_interval=0.01)
        store.execute("DETACH TABLE analytics.frontend_events")
        try:
            task = asyncio.create_task(writer.run())
            for _ in range(300):  # 3 s of arrivals
                await _spool(spool, [_record(1)])
                await asyncio.sleep(0.01)
            failures = writer.state.consecutive_failures
        finally:
            store.execute("ATTACH TABLE analytics.frontend_events")
        # 0.2 s doubling (±20 %): attempts at about 0, 0.2, 0.6, 1.4 and 3.0 s.
        assert 2 <= failures <= 6, failures
        for _ in range(600):
            if spool.checkpoint == spool.durable_end:
                break
            await asyncio.sleep(0.025)
        await writer.stop(task, timeout=5)
        spool.close()
        return writer

    with caplog.at_level(logging.INFO, logger="netra_analytics.ingest.writer"):
        writer = asyncio.run(scenario())
    assert _counts(store) == (300, 300)
    assert writer.state.consecutive_failures == 0
    messages = [r.getMessage() for r in caplog.records if r.name.endswith("writer")]
    assert messages == ["store write failed; retrying with backoff", "store write works again"]


# Events for the identity tests: a few ids, two users, three contents (feature names). The
# contents differ in what the client sent; every copy is received at its own moment, so the
# lines differ in time-derived fields too, as a real retry's do.
IDS = [str(uuid) for uuid in ("6f1c0000-0000-4000-8000-00000000000" + str(i) for i in range(3))]
USERS = ["u-a", "u-b"]
CONTENTS = ["cost_explorer", "budgets", "alerts"]


def _one(event_id: str, user: str, content: int) -> SpoolRecord:
    """A request of one feature_usage event, as the service spools it."""
    sent = {**event("feature_usage", feature_name=CONTENTS[content]), "event_id": event_id}
    batch = process(
        orjson.dumps(body([sent], user_id=user)), RequestInfo(received_at=datetime.now(UTC))
    )
    [accepted] = batch.accepted
    return SpoolRecord(time.time(), [(event_id, user, accepted.row)], [])


occurrences = st.lists(
    st.tuples(st.sampled_from(IDS), st.sampled_from(USERS), st.integers(0, 2)), max_size=12
)
stored_contents = st.dictionaries(
    st.tuples(st.sampled_from(IDS), st.sampled_from(USERS)), st.integers(0, 2), max_size=4
)


@settings(max_examples=60, deadline=None)
@given(sent=occurrences, stored=stored_contents)
def test_each_copy_of_an_id_is_a_retry_or_a_conflict_by_content(
    sent: list[tuple[str, str, int]], stored: dict[tuple[str, str], int]
) -> None:
    """prepare_batch against a model: per (id, user), the first copy is stored unless one is
    stored already; every copy whose content differs from the event it repeats (the stored one,
    else the batch's first) is reported as a conflict, in one batch as across batches. The
    same batch comes back from the in-flight file, as a restart rebuilds it."""
    records = [_one(event_id, user, content) for event_id, user, content in sent]
    fingerprints = {c: line_fingerprint(_one(IDS[0], "x", c).events[0][2]) for c in range(3)}
    excluded: dict[tuple[str, str], Exclusion] = {}
    for (event_id, user), content in stored.items():
        first = next((c for i, u, c in sent if (i, u) == (event_id, user)), None)
        if first is not None:  # the writer looks up only the batch's keys
            why = STORED if first == content else CONFLICT
            excluded[(event_id, user)] = Exclusion(why, fingerprints[content])

    kept: list[tuple[str, str, int]] = []
    conflicts: list[tuple[str, str, int]] = []
    reference: dict[tuple[str, str], int] = {}
    for event_id, user, content in sent:
        key = (event_id, user)
        if key not in reference:
            if key in excluded:
                reference[key] = stored[key]
            else:
                reference[key] = content
                kept.append((event_id, user, content))
                continue
        if content != reference[key]:
            conflicts.append((event_id, user, content))

    batch = prepare_batch(records, 0, excluded)

    def described(line: bytes) -> tuple[str, str, int]:
        row = orjson.loads(line)
        sent_event = orjson.loads(row["event"]) if "event" in row else row
        properties = sent_event["properties"]
        if isinstance(properties, str):
            properties = orjson.loads(properties)
        return (sent_event["event_id"], row["user_id"], CONTENTS.index(properties["feature_name"]))

    assert [described(line) for _, line in batch.events] == kept
    assert [described(line) for line in batch.rejected] == conflicts
    assert all(orjson.loads(line)["reason"] == "duplicate_event_id" for line in batch.rejected)
    assert batch.duplicates == len(sent) - len(kept)
    entries = [[i, u, e.why, e.fingerprint or ""] for (i, u), e in excluded.items()]
    rebuilt = prepare_batch(records, 0, _excluded_from_file(orjson.loads(orjson.dumps(entries))))
    assert rebuilt == batch


def test_a_retry_and_a_conflict_in_one_batch_are_told_apart(
    store: ChdbStore, tmp_path: Path
) -> None:
    """The event, then in one batch its retry and another event under its id: one stored, the
    other reported (the retry only left out). Then the same pair again, now that the first is
    stored: one more conflict, nothing stored twice."""

    async def scenario() -> None:
        spool = Spool(tmp_path, max_bytes=1 << 24)
        await _spool(spool, [_one(IDS[0], "u-a", c) for c in (0, 0, 1)])
        writer = BatchWriter(spool, store, batch_size=100, flush_interval=0.2)
        await _run_until_drained(writer, spool)
        assert writer.state.batches_written == 1
        await _spool(spool, [_one(IDS[0], "u-a", 0), _one(IDS[0], "u-a", 1)])  # received anew
        writer = BatchWriter(spool, store, batch_size=100, flush_interval=0.2)
        await _run_until_drained(writer, spool)
        spool.close()

    asyncio.run(scenario())
    [stored] = store.query_rows("SELECT event_label FROM analytics.frontend_events")
    assert stored["event_label"] == "cost_explorer"
    conflicts = store.query_rows(
        "SELECT reason, user_id, event FROM analytics.rejected_events ORDER BY received_at"
    )
    assert [(c["reason"], c["user_id"]) for c in conflicts] == [("duplicate_event_id", "u-a")] * 2
    assert all('"budgets"' in c["event"] for c in conflicts)
