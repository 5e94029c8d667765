from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from netra_analytics.errors import SpoolFull
from netra_analytics.ingest.spool import Spool


def _append_all(spool: Spool, payloads: list[bytes]) -> None:
    async def run() -> None:
        await asyncio.gather(*(spool.append(p) for p in payloads))

    asyncio.run(run())


def _payloads(spool: Spool, start: int | None = None) -> list[bytes]:
    return [r.payload for r in spool.read(spool.checkpoint if start is None else start, 10_000)]


def test_appended_records_read_back_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    payloads = [f"record {i}".encode() for i in range(50)]
    _append_all(spool, payloads)
    assert _payloads(spool) == payloads
    spool.close()


def test_records_survive_reopen_and_commit_moves_the_start(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    _append_all(spool, [b"a", b"b", b"c"])
    records = spool.read(0, 10)
    spool.commit(records[1].end)
    spool.close()
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert _payloads(reopened) == [b"c"]
    assert reopened.backlog_bytes == records[2].end - records[1].end
    reopened.close()


def test_torn_tail_is_truncated_on_open(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    _append_all(spool, [b"first", b"second"])
    spool.close()
    [segment] = tmp_path.glob("*.wal")
    with open(segment, "ab") as handle:
        handle.write(b"\x40\x00\x00\x00garbage")  # a header promising 64 bytes, then a crash
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert _payloads(reopened) == [b"first", b"second"]
    _append_all(reopened, [b"third"])
    assert _payloads(reopened) == [b"first", b"second", b"third"]
    reopened.close()


def test_corrupt_byte_in_tail_record_drops_that_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    _append_all(spool, [b"keep", b"flipped"])
    spool.close()
    [segment] = tmp_path.glob("*.wal")
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF
    segment.write_bytes(bytes(data))
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert _payloads(reopened) == [b"keep"]
    reopened.close()


def test_segments_roll_and_committed_ones_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=100)
    payloads = [bytes([i]) * 40 for i in range(10)]
    for payload in payloads:
        _append_all(spool, [payload])
    assert len(list(tmp_path.glob("*.wal"))) > 3
    assert _payloads(spool) == payloads
    records = spool.read(0, 100)
    spool.commit(records[7].end)
    assert _payloads(spool) == payloads[8:]
    assert len(list(tmp_path.glob("*.wal"))) <= 3
    spool.close()
    reopened = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=100)
    assert _payloads(reopened) == payloads[8:]
    reopened.close()


def test_cap_refuses_appends_until_committed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1000)
    _append_all(spool, [b"x" * 400, b"y" * 400])
    with pytest.raises(SpoolFull):
        _append_all(spool, [b"z" * 400])
    spool.commit(spool.durable_end)
    _append_all(spool, [b"z" * 400])
    assert _payloads(spool) == [b"z" * 400]
    spool.close()


def test_concurrent_appends_share_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 30)
    calls = []
    original = spool._write_durably

    def counting(data: bytes) -> None:
        calls.append(len(data))
        original(data)

    monkeypatch.setattr(spool, "_write_durably", counting)
    _append_all(spool, [b"p" * 100] * 200)
    assert len(_payloads(spool)) == 200
    assert len(calls) < 200 / 4  # group commit: many appends per write+fsync
    spool.close()


def test_a_second_process_cannot_open_the_same_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    with pytest.raises(RuntimeError, match="another process"):
        Spool(tmp_path, max_bytes=1 << 20)
    spool.close()
