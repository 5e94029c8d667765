"""A spool's reader in another process (`SpoolFollower`), against the real spool on disk: it
reads what the owner has stored and nothing beyond, and the owner keeps every segment it has
not passed, whatever the order of appends, commits, reads and owner restarts."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netra_analytics.ingest.spool import QUARANTINE, Spool, SpoolBusy, SpoolFollower

READER = "prompts"
SEGMENT = 120  # bytes: a few records per segment, so segments roll and are dropped often


def _owner(directory: Path) -> Spool:
    return Spool(directory, max_bytes=1 << 20, segment_bytes=SEGMENT, outside_readers=(READER,))


def _append(spool: Spool, payloads: list[bytes]) -> None:
    async def run() -> None:
        for payload in payloads:
            await spool.append(payload)

    asyncio.run(run())


def _follow_once(follower: SpoolFollower) -> None:
    """One poll of the owner's checkpoint."""

    async def run() -> None:
        task = asyncio.create_task(follower.follow())
        await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(run())


operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 6)),
        st.tuples(st.just("store"), st.integers(0, 8)),  # the writer commits n more records
        st.tuples(st.just("analyse"), st.integers(1, 5)),  # the follower reads and commits
        st.tuples(st.just("restart"), st.just(0)),  # the worker restarts (a new Spool)
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(operations)
def test_the_follower_reads_every_stored_record_once_in_order(ops: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        owner = _owner(directory)
        follower = SpoolFollower(directory, reader=READER, max_bytes=1 << 20)
        appended: list[bytes] = []
        ends: list[int] = []  # the end offset of each appended record
        stored = 0  # records the owner has committed
        analysed: list[bytes] = []
        try:
            for op, n in ops:
                if op == "append":
                    batch = [f"r{len(appended) + i}".encode() * 3 for i in range(n)]
                    _append(owner, batch)
                    for record in owner.read(ends[-1] if ends else owner.checkpoint, n):
                        ends.append(record.end)
                    appended += batch
                elif op == "store" and appended:
                    stored = min(len(appended), stored + n)
                    if stored:
                        owner.commit(ends[stored - 1])
                elif op == "analyse":
                    _follow_once(follower)
                    records = follower.read(follower.consumer_offset(READER), n)
                    assert all(r.end <= owner.checkpoint for r in records)  # stored ones only
                    analysed += [r.payload for r in records if r.payload is not None]
                    if records:
                        follower.commit_consumer(READER, records[-1].end)
                elif op == "restart":
                    owner.close()
                    owner = _owner(directory)
                # Whatever the follower has not read is still on disk.
                assert follower.read(follower.consumer_offset(READER), 10_000) is not None
                assert analysed == appended[: len(analysed)]
            _follow_once(follower)
            rest = follower.read(follower.consumer_offset(READER), 10_000)
            analysed += [r.payload for r in rest if r.payload is not None]
            assert analysed == appended[:stored]
        finally:
            owner.close()
            follower.close()


def test_the_owner_drops_a_segment_only_once_the_follower_is_past_it(tmp_path: Path) -> None:
    owner = _owner(tmp_path)
    follower = SpoolFollower(tmp_path, reader=READER, max_bytes=1 << 20)
    _append(owner, [b"x" * 50 for _ in range(12)])  # 58-byte records: six segments
    owner.commit(owner.durable_end)
    segments = len(list(tmp_path.glob("*.wal")))
    assert segments >= 5  # every record is stored, and all are kept for the follower
    _follow_once(follower)
    records = follower.read(follower.consumer_offset(READER), 100)
    assert [r.payload for r in records] == [b"x" * 50] * 12
    follower.commit_consumer(READER, records[5].end)
    assert len(list(tmp_path.glob("*.wal"))) == segments  # the owner has not looked yet
    owner.release_read_segments()  # as the worker does every second, traffic or not
    assert len(list(tmp_path.glob("*.wal"))) < segments
    assert [r.payload for r in follower.read(records[5].end, 100)] == [b"x" * 50] * 6
    owner.close()
    follower.close()


def test_a_second_follower_of_the_same_reader_is_refused(tmp_path: Path) -> None:
    first = SpoolFollower(tmp_path, reader=READER, max_bytes=1 << 20)
    with pytest.raises(SpoolBusy):
        SpoolFollower(tmp_path, reader=READER, max_bytes=1 << 20)
    first.close()
    SpoolFollower(tmp_path, reader=READER, max_bytes=1 << 20).close()


def test_a_follower_passes_a_damaged_record_without_quarantining_it(tmp_path: Path) -> None:
    owner = Spool(tmp_path, max_bytes=1 << 20)
    _append(owner, [b"good one", b"damaged!", b"good two"])
    owner.commit(owner.durable_end)
    owner.close()
    [segment] = tmp_path.glob("*.wal")
    data = bytearray(segment.read_bytes())
    data[16 + 8 + 2] ^= 0xFF  # a byte of the second record's payload
    segment.write_bytes(bytes(data))
    follower = SpoolFollower(tmp_path, reader=READER, max_bytes=1 << 20)
    payloads = [r.payload for r in follower.read(0, 10)]
    assert payloads == [b"good one", None, b"good two"]
    assert not (tmp_path / QUARANTINE).exists()  # the owner's writer sets it aside, once
    follower.close()


def test_a_reader_file_cut_short_by_a_crash_is_not_taken_for_a_reader(tmp_path: Path) -> None:
    owner = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=SEGMENT)
    _append(owner, [b"z" * 50 for _ in range(6)])
    owner.close()
    (tmp_path / "consumer.prompts.tmp").write_text("0")  # a temp file a crash left
    owner = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=SEGMENT)
    owner.commit(owner.durable_end)
    assert len(list(tmp_path.glob("*.wal"))) == 1  # not held back by a reader "prompts.tmp"
    owner.close()


def test_an_outside_reader_without_a_file_yet_holds_the_segments(tmp_path: Path) -> None:
    """Until the follower's first commit, the owner keeps everything it held at its start."""
    owner = _owner(tmp_path)
    _append(owner, [b"w" * 50 for _ in range(6)])
    owner.commit(owner.durable_end)
    assert [r.payload for r in owner.read(0, 10)] == [b"w" * 50] * 6
    owner.close()


def test_a_sealed_segment_leaves_the_disk_once_the_follower_is_past_it(tmp_path: Path) -> None:
    """An erasure seals the spool; the segment holding the person's events goes once every
    reader, the follower in its own process included, has passed it, without new traffic."""
    owner = _owner(tmp_path)
    follower = SpoolFollower(tmp_path, reader=READER, max_bytes=1 << 20)
    _append(owner, [b"erased-person"])
    owner.commit(owner.durable_end)
    asyncio.run(owner.seal())
    assert any(b"erased-person" in p.read_bytes() for p in tmp_path.glob("*.wal"))
    _follow_once(follower)
    [record] = follower.read(follower.consumer_offset(READER), 10)
    follower.commit_consumer(READER, record.end)
    owner.release_read_segments()
    assert not any(b"erased-person" in p.read_bytes() for p in tmp_path.glob("*.wal"))
    owner.close()
    follower.close()
