"""The durable spool: a write-ahead log of accepted events, on disk before the 2xx is sent.

Layout: `<data_dir>/spool/` holds segment files named by the global byte offset of their first
record (`00000000000000000000.wal`, ...) and `checkpoint`, the offset below which every record
is in ClickHouse. A record is `[length u32][crc32 u32][payload]`.

Contract:
- `append` returns only after the record is written and fsynced. Appends that arrive while an
  fsync is running are written together by the next one (group commit), so one fsync serves
  many requests under load.
- Only the tail of the last segment can be incomplete after a crash (nothing after it was ever
  acknowledged); opening the spool truncates it.
- `read` returns durable records from an offset; `commit` advances the checkpoint (atomically:
  temp file, fsync, rename) and deletes segments wholly below it.
- Other readers (prompt intelligence) keep their own offsets (`consumer_offset`,
  `commit_consumer`); a segment is deleted only once every reader has passed it. A reader that
  falls more than the cap behind is moved up to the writer's checkpoint (`skipped_bytes` says
  how much it lost) rather than let the disk fill.
- The writer records the batch it is inserting (`save_in_flight`: where it ends, which event
  ids it leaves out) so that after a crash the same batch can be retried as it was; the
  record is void once the checkpoint passes it.
- The spool refuses an append (`SpoolFull`) when the bytes not yet committed would pass the
  cap: the client is told 503 and keeps its events, rather than the disk filling up.
- One process owns a spool directory (an exclusive `flock`); a second one fails at start-up.

Everything except `read` runs on the event loop's thread; file writes and fsync run in a worker
thread so the loop keeps serving while the disk works.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import itertools
import json
import os
import struct
import zlib
from pathlib import Path

from netra_analytics.errors import SpoolFull

_HEADER = struct.Struct("<II")
SEGMENT_BYTES = 64 << 20
_SUFFIX = ".wal"


@dataclasses.dataclass(frozen=True)
class Record:
    end: int  # offset just after this record: commit(end) marks it stored
    payload: bytes


IN_FLIGHT_FORMAT = 2  # entries (event id, user id, why); inserts deduplicated by their rows


class Spool:
    def __init__(
        self, directory: Path, *, max_bytes: int, segment_bytes: int = SEGMENT_BYTES
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._dir = directory
        self._max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._lock_fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise RuntimeError(f"another process is using the spool in {directory}") from None
        self.checkpoint = self._read_offset("checkpoint")
        self._consumers: dict[str, int] = {
            p.name.removeprefix("consumer."): self._read_offset(p.name)
            for p in directory.glob("consumer.*")
        }
        self.skipped_bytes = 0
        self.durable_end = self._recover()
        self._segment_base = self._segments()[-1]
        self._fd = os.open(self._segment_path(self._segment_base), os.O_WRONLY | os.O_APPEND)
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._pending_bytes = 0
        self._flush_task: asyncio.Task[None] | None = None
        self.new_data = asyncio.Event()  # set whenever durable_end moves
        self.committed = asyncio.Event()  # set whenever the checkpoint moves

    # --- state -----------------------------------------------------------------------------

    @property
    def backlog_bytes(self) -> int:
        """Bytes accepted (or being accepted) but not yet committed to ClickHouse."""
        return self.durable_end - self.checkpoint + self._pending_bytes

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    # --- appending -------------------------------------------------------------------------

    async def append(self, payload: bytes) -> None:
        frame = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        if self.backlog_bytes + len(frame) > self._max_bytes:
            raise SpoolFull(
                f"the spool holds {self.backlog_bytes} bytes not yet stored (cap {self._max_bytes})"
            )
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((frame, future))
        self._pending_bytes += len(frame)
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_pending())
        # shield: a client that disconnects must not cancel a write other requests share.
        await asyncio.shield(future)

    async def _flush_pending(self) -> None:
        while self._pending:
            group, self._pending = self._pending, []
            data = b"".join(frame for frame, _ in group)
            try:
                await asyncio.to_thread(self._write_durably, data)
            except OSError as exc:
                for _, future in group:
                    future.set_exception(exc)
                continue
            finally:
                self._pending_bytes -= len(data)
            for _, future in group:
                future.set_result(None)
            self.new_data.set()

    def _write_durably(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fdatasync(self._fd)
        self.durable_end += len(data)
        if self.durable_end - self._segment_base >= self._segment_bytes:
            self._roll_segment()

    def _roll_segment(self) -> None:
        os.close(self._fd)
        self._segment_base = self.durable_end
        path = self._segment_path(self._segment_base)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._fsync_dir()

    async def wait_flushed(self) -> None:
        """Until every append made so far is durable (used at shutdown)."""
        while self._flush_task is not None and not self._flush_task.done():
            await asyncio.shield(self._flush_task)

    async def seal(self) -> None:
        """Start a new segment, so that every record appended so far leaves the disk once all
        readers are past it (an erasure must not leave a person's events in the spool)."""
        await self.wait_flushed()
        # No await from here on: no write can start between the check and the roll.
        if self.durable_end > self._segment_base:
            self._roll_segment()
        self._drop_read_segments()

    # --- reading and committing --------------------------------------------------------------

    def read(self, start: int, max_records: int) -> list[Record]:
        """Durable records from offset `start`, at most `max_records` (safe in a worker thread)."""
        records: list[Record] = []
        end = self.durable_end
        position = start
        while position < end and len(records) < max_records:
            before = position
            base = self._segment_containing(position)
            with open(self._segment_path(base), "rb") as handle:
                handle.seek(position - base)
                while position < end and len(records) < max_records:
                    header = handle.read(_HEADER.size)
                    if len(header) < _HEADER.size:
                        break  # end of this segment: the next one starts here
                    length, crc = _HEADER.unpack(header)
                    payload = handle.read(length)
                    if len(payload) != length or zlib.crc32(payload) != crc:
                        raise RuntimeError(f"spool record at offset {position} is corrupt")
                    position += _HEADER.size + length
                    records.append(Record(position, payload))
            if position == before:
                raise RuntimeError(f"spool has no record at offset {position}")
        return records

    def commit(self, offset: int) -> None:
        """Everything below `offset` is stored: move the checkpoint and drop old segments."""
        if offset <= self.checkpoint:
            return
        self._write_atomically("checkpoint", str(offset).encode())
        self.checkpoint = offset
        self.committed.set()
        (self._dir / "in_flight.json").unlink(missing_ok=True)
        self._drop_read_segments()

    def consumer_offset(self, name: str) -> int:
        """Where reader `name` is; a new reader starts at what the spool still holds."""
        if name not in self._consumers:
            self._consumers[name] = self._segments()[0]
        offset = self._consumers[name]
        if self.durable_end - offset > self._max_bytes:
            self.skipped_bytes += self.checkpoint - offset
            offset = self._consumers[name] = self.checkpoint
        return offset

    def commit_consumer(self, name: str, offset: int) -> None:
        self._write_atomically(f"consumer.{name}", str(offset).encode())
        self._consumers[name] = offset
        self._drop_read_segments()

    def _drop_read_segments(self) -> None:
        done = min([self.checkpoint, *self._consumers.values()])
        segments = self._segments()
        for base, following in itertools.pairwise(segments):
            if following <= done:
                self._segment_path(base).unlink()

    def save_in_flight(self, end: int, excluded: list[list[str]]) -> None:
        """Record the batch being inserted: it ends at `end` and leaves out `excluded` events.

        Each entry of `excluded` is the writer's (event id, user id, why).
        """
        self._write_atomically(
            "in_flight.json",
            json.dumps({"end": end, "excluded": excluded, "format": IN_FLIGHT_FORMAT}).encode(),
        )

    def load_in_flight(self) -> tuple[int, list[list[str] | str], int] | None:
        """(end, excluded, format) of the batch in flight, or None.

        Format 1 (no "format" key) was written by versions that left events out by id alone
        (entries are bare ids) and deduplicated inserts by ids: such a batch is retried so.
        """
        try:
            data = json.loads((self._dir / "in_flight.json").read_bytes())
        except FileNotFoundError:
            return None
        end, excluded = int(data["end"]), list(data["excluded"])
        if end <= self.checkpoint:
            return None
        return end, excluded, int(data.get("format", 1))

    def _write_atomically(self, name: str, data: bytes) -> None:
        tmp = self._dir / f"{name}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self._dir / name)
        self._fsync_dir()

    def close(self) -> None:
        os.close(self._fd)
        os.close(self._lock_fd)

    # --- recovery ----------------------------------------------------------------------------

    def _read_offset(self, name: str) -> int:
        try:
            return int((self._dir / name).read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def _recover(self) -> int:
        """Find the durable end, truncating a torn record at the tail of the last segment."""
        segments = self._segments()
        if not segments:
            self._segment_path(self.checkpoint).touch(mode=0o600)
            self._fsync_dir()
            return self.checkpoint
        last = segments[-1]
        path = self._segment_path(last)
        valid = 0
        with open(path, "rb") as handle:
            while True:
                header = handle.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    break
                length, crc = _HEADER.unpack(header)
                payload = handle.read(length)
                if len(payload) != length or zlib.crc32(payload) != crc:
                    break
                valid += _HEADER.size + length
        if valid != path.stat().st_size:
            with open(path, "r+b") as handle:
                handle.truncate(valid)
                handle.flush()
                os.fsync(handle.fileno())
        return last + valid

    def _segments(self) -> list[int]:
        return sorted(int(p.stem) for p in self._dir.glob(f"*{_SUFFIX}"))

    def _segment_containing(self, offset: int) -> int:
        return max(base for base in self._segments() if base <= offset)

    def _segment_path(self, base: int) -> Path:
        return self._dir / f"{base:020d}{_SUFFIX}"

    def _fsync_dir(self) -> None:
        fd = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
