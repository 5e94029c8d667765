"""The durable spool: a write-ahead log of accepted events, on disk before the 2xx is sent.

Layout: `<data_dir>/spool/` holds segment files named by the global byte offset of their first
record (`00000000000000000000.wal`, ...) and `checkpoint`, the offset below which every record
is in ClickHouse. A record is `[length u32][crc32 u32][payload]`.

Contract:
- `append` returns only after the record is written and fsynced. Appends that arrive while an
  fsync is running are written together by the next one (group commit), so one fsync serves
  many requests under load.
- Only the tail of the last segment can be incomplete after a crash (nothing after it was ever
  acknowledged); opening the spool truncates it, and nothing else. A record whose checksum
  fails anywhere else (a flipped bit on disk) is quarantined: its bytes are copied to
  `quarantine/<offset>.bad`, it is logged and counted (`netra_spool_quarantined_records_total`,
  `quarantined` for health), readers receive it as a record without payload, and every record
  after it is read as before. The next record is found again from the bad record's length when
  a valid record follows it there, else by scanning forward for the first offset holding a
  plausible length (at most `MAX_RECORD_BYTES`) and a payload with a matching CRC-32 (a false
  match has a chance of 2^-32 per offset tried). The record format is unchanged, so spools
  written by earlier versions read as before.
- `read` returns durable records from an offset; `commit` advances the checkpoint (atomically:
  temp file, fsync, rename) and deletes segments wholly below it.
- Other readers (prompt intelligence) keep their own offsets (`consumer_offset`,
  `commit_consumer`); a segment is deleted only once every reader has passed it. A reader that
  falls more than the cap behind (`consumer_over_cap`) must move up to the writer's checkpoint
  (`skip_consumer`; `skipped_bytes` says how much it passed over) rather than let the disk fill;
  the reader says so and recovers what it skipped from the store. Readers keep small notes of
  their own in the spool directory (`write_note`, `read_note`).
- The writer records the batch it is inserting (`save_in_flight`: where it ends, which event
  ids it leaves out) so that after a crash the same batch can be retried as it was; the
  record is void once the checkpoint passes it.
- The spool refuses an append (`SpoolFull`) when the bytes not yet committed would pass the
  cap: the client is told 503 and keeps its events, rather than the disk filling up.
- One process owns a spool directory (an exclusive `flock`); a second one fails at start-up
  (`SpoolBusy`). With several worker processes each claims its own (`claim_spool`): `spool`,
  `spool.1`, `spool.2`, ... (`spool_directory`).

Everything except `read` runs on the event loop's thread (`read_async` runs `read` in the
spool's reader threads); file writes and fsync run in the
spool's own thread (not asyncio's shared pool, where calls to a hung store could queue ahead of
them) so the loop keeps serving while the disk works, and acknowledging an event depends on
the disk alone. That thread takes the pending appends itself, group after group, for as long
as there are any (`_drain_pending`); only the appends cross between it and the loop, under a
lock of their own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import itertools
import json
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from netra_analytics import metrics
from netra_analytics.errors import SpoolFull

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")
SEGMENT_BYTES = 64 << 20
# No record is larger (a request body is at most 1 MiB, its rows a few times that): a length
# above it is damage, not a record.
MAX_RECORD_BYTES = 16 << 20
_SUFFIX = ".wal"
QUARANTINE = "quarantine"


@dataclasses.dataclass(frozen=True)
class Record:
    end: int  # offset just after this record: commit(end) marks it stored
    payload: bytes | None  # None: the record was damaged and is quarantined


@dataclasses.dataclass(frozen=True)
class Quarantined:
    offset: int  # where the damaged bytes began
    length: int  # how many bytes were set aside, up to the next valid record


IN_FLIGHT_FORMAT = 3  # entries (event id, user id, why, stored fingerprint); 2 had no fingerprint
# (both deduplicate inserts by their rows)


class SpoolBusy(RuntimeError):
    """Another process holds this spool directory."""


def spool_directory(data_dir: Path, index: int) -> Path:
    """Worker `index`'s spool: `spool` for the first (and the single process), `spool.<i>`."""
    return data_dir / ("spool" if index == 0 else f"spool.{index}")


def spool_index(directory: Path) -> int | None:
    """The index of a spool directory's name (`spool_directory`), None for other names."""
    if directory.name == "spool":
        return 0
    head, _, number = directory.name.partition(".")
    return int(number) if head == "spool" and number.isdigit() and number[0] != "0" else None


def claim_spool(
    data_dir: Path,
    count: int,
    *,
    max_bytes: int,
    wait_seconds: float = 30.0,
    outside_readers: Sequence[str] = (),
) -> Spool:
    """The first of the `count` spool directories no other process holds, opened.

    A worker killed with -9 frees its lock as it dies, so its replacement claims the same
    directory and stores the events it acknowledged. When all are held (a replacement started
    before the old worker's exit was complete), tries again for `wait_seconds`."""
    deadline = time.monotonic() + wait_seconds
    while True:
        for index in range(count):
            try:
                return Spool(
                    spool_directory(data_dir, index),
                    max_bytes=max_bytes,
                    outside_readers=outside_readers,
                )
            except SpoolBusy:
                continue
        if time.monotonic() >= deadline:
            raise SpoolBusy(f"all {count} spool directories in {data_dir} are held by others")
        time.sleep(0.2)


# An append waiting for its write: its frame, and the future its caller awaits.
_Pending = tuple[bytes, asyncio.Future[None]]


class Spool:
    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int,
        segment_bytes: int = SEGMENT_BYTES,
        outside_readers: Sequence[str] = (),
    ) -> None:
        """`outside_readers`: readers that run in another process (`SpoolFollower`): their
        offsets are read from their files when needed, and until a reader's first file is
        written it holds every segment there is now."""
        directory.mkdir(parents=True, exist_ok=True)
        self._dir = directory
        self._max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._lock_fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolBusy(f"another process is using the spool in {directory}") from None
        self.checkpoint = self._read_offset("checkpoint")
        self._consumers: dict[str, int] = {
            p.name.removeprefix("consumer."): self._read_offset(p.name)
            for p in directory.glob("consumer.*")
            if not p.name.endswith(".tmp")  # a write a crash cut short
        }
        self.skipped_bytes = 0
        self._quarantine_lock = threading.Lock()
        self.quarantined: dict[int, Quarantined] = {
            int(p.stem): Quarantined(int(p.stem), p.stat().st_size)
            for p in (directory / QUARANTINE).glob("*.bad")
        }
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool-fsync")
        # Readers (writer, prompt worker) have threads of their own too: not behind the fsyncs,
        # and not in asyncio's shared pool, where report queries to a hung store can queue.
        self._reads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="spool-read")
        self.durable_end = self._recover()
        self._segment_base = self._segments()[-1]
        self.outside_readers = tuple(outside_readers)
        for name in self.outside_readers:
            self.consumer_offset(name)
        self._fd = os.open(self._segment_path(self._segment_base), os.O_WRONLY | os.O_APPEND)
        # What `append` hands to the spool's thread: under `_pending_lock`, as are the bytes
        # not yet durable and whether the thread is taking them (`_draining`).
        self._pending: list[_Pending] = []
        self._pending_bytes = 0
        self._pending_lock = threading.Lock()
        self._draining = False
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
        frame = _HEADER.pack(len(payload), crc32_holding_gil(payload)) + payload
        if len(payload) > MAX_RECORD_BYTES:
            raise ValueError(f"a spool record of {len(payload)} bytes (at most {MAX_RECORD_BYTES})")
        if self.backlog_bytes + len(frame) > self._max_bytes:
            raise SpoolFull(
                f"the spool holds {self.backlog_bytes} bytes not yet stored (cap {self._max_bytes})"
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._pending_lock:
            self._pending.append((frame, future))
            self._pending_bytes += len(frame)
            start, self._draining = not self._draining, True
        if start:
            self._flush_task = loop.create_task(self._flush_pending())
        # A client that disconnects cancels this future only: its frame is written with the
        # group all the same (`_settle` skips futures already done).
        await future

    async def _flush_pending(self) -> None:
        """Until the spool's thread has made every pending append durable (`_drain_pending`);
        started by the append that finds no drain running."""
        await asyncio.get_running_loop().run_in_executor(self._io, self._drain_pending)

    def _drain_pending(self) -> None:
        """In the spool's thread: write and fsync what is pending, group after group, until
        nothing is. Each group is answered on its event loop (`_settle`) once it is durable,
        while the thread goes straight on to the next group, which arrived during the fsync.

        Why in one thread call rather than one call per group: a call per group went through
        the event loop twice (to hand the group over, and to learn it was done), and under load
        the thread waited for the worker's interpreter lock at both. At one event per request
        (issue 17, twelfth pass) a group of ~10 appends spent 0.6-1.0 ms waiting to start and
        0.4-0.6 ms to be answered around a 0.9-1.1 ms write and fsync; this way the next fsync
        starts as the last ends, and the workers used 11 % less CPU per event (bench/README.md).
        """
        while True:
            with self._pending_lock:
                group, self._pending = self._pending, []
                if not group:
                    self._draining = False
                    return
            error: Exception | None = None
            try:
                self._write_durably(b"".join(frame for frame, _ in group))
            except Exception as exc:  # OSError; anything else must not stop later appends
                error = exc
            # Each append is answered on the loop that awaits it: a service has one, but the
            # spool outlives a loop (`asyncio.run` per call in tests and tools).
            by_loop: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
            for entry in group:
                by_loop.setdefault(entry[1].get_loop(), []).append(entry)
            for loop, entries in by_loop.items():
                try:
                    loop.call_soon_threadsafe(self._settle, entries, error)
                except RuntimeError:  # that loop is closed: nothing awaits these any more
                    with self._pending_lock:
                        self._pending_bytes -= sum(len(frame) for frame, _ in entries)

    def _settle(self, entries: list[_Pending], error: Exception | None) -> None:
        """On the loop: answer appends written together (`error`: why the write failed)."""
        with self._pending_lock:
            self._pending_bytes -= sum(len(frame) for frame, _ in entries)
        for _, future in entries:
            if not future.done():
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)
        if error is None:
            self.new_data.set()

    def _write_durably(self, data: bytes) -> None:
        started = time.perf_counter()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fdatasync(self._fd)
        metrics.SPOOL_FSYNC_SECONDS.observe(time.perf_counter() - started)
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
        loop = asyncio.get_running_loop()
        while self._draining:
            task = self._flush_task
            if task is not None and not task.done() and task.get_loop() is loop:
                await asyncio.shield(task)
            else:  # the drain was started from a loop that has ended: it goes on by itself
                await asyncio.sleep(0.001)

    async def seal(self) -> None:
        """Start a new segment, so that every record appended so far leaves the disk once all
        readers are past it (an erasure must not leave a person's events in the spool)."""
        await self.wait_flushed()
        # No await from here on: no write can start between the check and the roll.
        if self.durable_end > self._segment_base:
            self._roll_segment()
        self._drop_read_segments()

    def bytes_on_disk(self) -> int:
        """What the spool's directory holds: segments, offsets and quarantined records."""
        return sum(p.stat().st_size for p in self._dir.rglob("*") if p.is_file())

    def drop_quarantined_with(self, needles: Sequence[bytes]) -> int:
        """Delete the quarantined records whose bytes contain any of `needles` (an erasure:
        a damaged record may still hold a person's id in clear); they stay counted. Returns
        how many files were deleted."""
        dropped = 0
        with self._quarantine_lock:
            for path in (self._dir / QUARANTINE).glob("*.bad"):
                data = path.read_bytes()
                if any(needle and needle in data for needle in needles):
                    path.unlink()
                    dropped += 1
        return dropped

    # --- reading and committing --------------------------------------------------------------

    def read(self, start: int, max_records: int) -> list[Record]:
        """Durable records from offset `start`, at most `max_records` (safe in a worker thread).

        A damaged record is quarantined and returned without payload, spanning the bytes up to
        the next valid record (or the segment's end).
        """
        return _read_records(self._dir, start, self.durable_end, max_records, self._quarantine)

    async def read_async(self, start: int, max_records: int) -> list[Record]:
        """`read` in the spool's reader threads."""
        return await asyncio.get_running_loop().run_in_executor(
            self._reads, self.read, start, max_records
        )

    def _quarantine(self, offset: int, data: bytes) -> None:
        """Set a damaged record's bytes aside (once), log it and count it."""
        with self._quarantine_lock:
            if offset in self.quarantined:
                return
            folder = self._dir / QUARANTINE
            folder.mkdir(exist_ok=True)
            path = folder / f"{offset:020d}.bad"
            with open(path, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self.quarantined[offset] = Quarantined(offset, len(data))
        metrics.SPOOL_QUARANTINED.inc()
        log.error(
            "spool record failed its checksum; quarantined, the records after it are kept",
            extra={"offset": offset, "bytes": len(data), "file": str(path)},
        )

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
        outside = name in self.outside_readers
        written = _offset_file(self._dir, f"consumer.{name}") if outside else None
        if written is not None:
            self._consumers[name] = written
        elif name not in self._consumers:
            self._consumers[name] = self._segments()[0]
        return self._consumers[name]

    def consumer_over_cap(self, name: str) -> bool:
        """Whether reader `name` holds more than the cap of spool on disk behind it."""
        return self.durable_end - self.consumer_offset(name) > self._max_bytes

    def skip_consumer(self, name: str) -> int:
        """Move reader `name` up to the writer's checkpoint; the bytes it passes over."""
        skipped = max(0, self.checkpoint - self.consumer_offset(name))
        self.skipped_bytes += skipped
        self.commit_consumer(name, max(self.checkpoint, self.consumer_offset(name)))
        return skipped

    def write_note(self, name: str, data: bytes) -> None:
        """Keep `data` as note `name` (atomically, fsynced); for readers' own bookkeeping."""
        self._write_atomically(f"note.{name}", data)

    def read_note(self, name: str) -> bytes | None:
        return _read_note(self._dir, name)

    def commit_consumer(self, name: str, offset: int) -> None:
        self._write_atomically(f"consumer.{name}", str(offset).encode())
        self._consumers[name] = offset
        self._drop_read_segments()

    def release_read_segments(self) -> None:
        """Drop the segments every reader has passed, the outside readers' offsets read again:
        they move without this process committing (called about once a second while it
        has outside readers, so that what they pass leaves the disk when traffic stops, and
        an erasure's sealed segment once they are past it)."""
        self._drop_read_segments()

    def _drop_read_segments(self) -> None:
        for name in self.outside_readers:
            self.consumer_offset(name)
        done = min([self.checkpoint, *self._consumers.values()])
        segments = self._segments()
        for base, following in itertools.pairwise(segments):
            if following <= done:
                self._segment_path(base).unlink()

    def save_in_flight(self, end: int, excluded: list[list[str]]) -> None:
        """Record the batch being inserted: it ends at `end` and leaves out `excluded` events.

        Each entry of `excluded` is the writer's (event id, user id, why, stored fingerprint).
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
        _write_atomically(self._dir, name, data)

    def close(self) -> None:
        self._io.shutdown()
        self._reads.shutdown()
        os.close(self._fd)
        os.close(self._lock_fd)

    # --- recovery ----------------------------------------------------------------------------

    def _read_offset(self, name: str) -> int:
        return _offset_file(self._dir, name) or 0

    def _recover(self) -> int:
        """Find the durable end: cut a torn record at the tail of the last segment (written,
        never acknowledged), and only that. Damaged records before it are quarantined."""
        segments = self._segments()
        if not segments:
            self._segment_path(self.checkpoint).touch(mode=0o600)
            self._fsync_dir()
            return self.checkpoint
        last = segments[-1]
        path = self._segment_path(last)
        with open(path, "rb") as handle:
            data = handle.read()
        valid = 0
        while valid < len(data):
            length = _valid_record_at(data, valid)
            if length is not None:
                valid += _HEADER.size + length
                continue
            following = _resynchronise(data, valid)
            if following == len(data) and _torn(data, valid):
                break
            self._quarantine(last + valid, data[valid:following])
            valid = following
        if valid != len(data):
            log.info(
                "spool: cut a torn record at the tail (written, never acknowledged)",
                extra={"offset": last + valid, "bytes": len(data) - valid},
            )
            with open(path, "r+b") as handle:
                handle.truncate(valid)
                handle.flush()
                os.fsync(handle.fileno())
        return last + valid

    def _segments(self) -> list[int]:
        return _segment_bases(self._dir)

    def _segment_path(self, base: int) -> Path:
        return _segment_file(self._dir, base)

    def _fsync_dir(self) -> None:
        _fsync_dir(self._dir)


class SpoolFollower:
    """A reader in another process than the spool's owner: the prompt analysis of a worker's
    spool, in its own process (`prompt_process`). It reads only records below the owner's
    checkpoint (stored, so never cut away by a recovery), keeps its offset in its own file as an
    in-process reader does (the owner, told of it by `outside_readers`, keeps the segments it
    has not passed), and quarantines nothing (the owner's writer read each record first).

    `follow()` reads the owner's checkpoint every `poll_seconds` and sets `committed` when it
    moves. One follower per reader and directory (an exclusive `flock` on `lock.<reader>`)."""

    def __init__(
        self, directory: Path, *, reader: str, max_bytes: int, poll_seconds: float = 0.2
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._dir = directory
        self._reader = reader
        self._max_bytes = max_bytes
        self._poll_seconds = poll_seconds
        self._lock_fd = os.open(directory / f"lock.{reader}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolBusy(f"another process reads the spool in {directory} as {reader}") from None
        self.checkpoint = _offset_file(directory, "checkpoint") or 0
        written = _offset_file(directory, f"consumer.{reader}")
        if written is None:
            segments = _segment_bases(directory)
            written = segments[0] if segments else self.checkpoint
        self._offset = written
        self.skipped_bytes = 0
        self._reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool-follow")
        self.committed = asyncio.Event()  # set whenever the owner's checkpoint moves

    async def follow(self) -> None:
        """Keep `checkpoint` up to date (until cancelled)."""
        while True:
            checkpoint = _offset_file(self._dir, "checkpoint") or 0
            if checkpoint > self.checkpoint:
                self.checkpoint = checkpoint
                self.committed.set()
            await asyncio.sleep(self._poll_seconds)

    @property
    def written_end(self) -> int:
        """Where the owner's newest segment ends on disk now (durable or not)."""
        segments = _segment_bases(self._dir)
        if not segments:
            return self.checkpoint
        try:
            return segments[-1] + _segment_file(self._dir, segments[-1]).stat().st_size
        except FileNotFoundError:  # rolled and dropped meanwhile: read again next time
            return self.checkpoint

    def read(self, start: int, max_records: int) -> list[Record]:
        """Stored records from `start` (below the checkpoint), at most `max_records`."""
        return _read_records(self._dir, start, self.checkpoint, max_records, _skip_damaged)

    async def read_async(self, start: int, max_records: int) -> list[Record]:
        return await asyncio.get_running_loop().run_in_executor(
            self._reads, self.read, start, max_records
        )

    def consumer_offset(self, name: str) -> int:
        self._check(name)
        return self._offset

    def consumer_over_cap(self, name: str) -> bool:
        """As `Spool.consumer_over_cap`, with the owner's written end for its durable one."""
        self._check(name)
        return self.written_end - self._offset > self._max_bytes

    def skip_consumer(self, name: str) -> int:
        skipped = max(0, self.checkpoint - self.consumer_offset(name))
        self.skipped_bytes += skipped
        self.commit_consumer(name, max(self.checkpoint, self._offset))
        return skipped

    def commit_consumer(self, name: str, offset: int) -> None:
        self._check(name)
        _write_atomically(self._dir, f"consumer.{name}", str(offset).encode())
        self._offset = offset

    def write_note(self, name: str, data: bytes) -> None:
        _write_atomically(self._dir, f"note.{name}", data)

    def read_note(self, name: str) -> bytes | None:
        return _read_note(self._dir, name)

    def close(self) -> None:
        self._reads.shutdown()
        os.close(self._lock_fd)

    def _check(self, name: str) -> None:
        if name != self._reader:
            raise ValueError(f"this follower reads as {self._reader!r}, not {name!r}")


def _skip_damaged(offset: int, data: bytes) -> None:
    """A follower passes over a damaged record: the owner's writer has quarantined it."""


def _write_atomically(directory: Path, name: str, data: bytes) -> None:
    """File `name` holds `data`, whole or not at all, after a crash too (temp, fsync, rename)."""
    tmp = directory / f"{name}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, directory / name)
    _fsync_dir(directory)


def _read_note(directory: Path, name: str) -> bytes | None:
    """Note `name` (`Spool.write_note`), None when there is none."""
    try:
        return (directory / f"note.{name}").read_bytes()
    except FileNotFoundError:
        return None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _segment_bases(directory: Path) -> list[int]:
    """The offsets of the segments in `directory`, in order."""
    return sorted(int(p.stem) for p in directory.glob(f"*{_SUFFIX}"))


def _segment_file(directory: Path, base: int) -> Path:
    return directory / f"{base:020d}{_SUFFIX}"


def _offset_file(directory: Path, name: str) -> int | None:
    """The offset kept in file `name`, None when there is none."""
    try:
        return int((directory / name).read_text().strip() or 0)
    except FileNotFoundError:
        return None


def _read_records(
    directory: Path,
    start: int,
    end: int,
    max_records: int,
    damaged: Callable[[int, bytes], None],
) -> list[Record]:
    """Records from `start` up to `end`, at most `max_records`; `damaged(offset, bytes)` hears
    of each damaged record, which is returned without payload (`Spool.read`)."""
    records: list[Record] = []
    position = start
    while position < end and len(records) < max_records:
        segments = _segment_bases(directory)
        base = max(b for b in segments if b <= position)
        later = [b for b in segments if b > base]
        limit = min(later[0], end) if later else end
        with open(_segment_file(directory, base), "rb") as handle:
            handle.seek(position - base)
            while position < limit and len(records) < max_records:
                header = handle.read(_HEADER.size)
                length, crc = _HEADER.unpack(header) if len(header) == _HEADER.size else (0, 0)
                fits = len(header) == _HEADER.size and position + _HEADER.size + length <= limit
                payload = handle.read(length) if fits and length <= MAX_RECORD_BYTES else b""
                if fits and len(payload) == length and zlib.crc32(payload) == crc:
                    position += _HEADER.size + length
                    records.append(Record(position, payload))
                    continue
                # Damaged: load the rest of the segment to find the next valid record.
                handle.seek(position - base)
                rest = handle.read(limit - position)
                following = _resynchronise(rest, 0)
                damaged(position, rest[:following])
                position += following
                records.append(Record(position, None))
                handle.seek(position - base)
    return records


# zlib.crc32 lets other threads run while it sums more than 5 KiB (CPython's zlibmodule.c),
# and the event loop then waits to get the interpreter back, up to the switch interval (5 ms)
# when the writer's or the prompt worker's thread takes it: measured ~240 µs per 20-event
# record on average under load. Summed in pieces below that size, it keeps running.
_CRC_PIECE = 4096


def crc32_holding_gil(data: bytes) -> int:
    """zlib.crc32(data), in pieces too small for zlib to release the GIL (equal results)."""
    if len(data) <= _CRC_PIECE:
        return zlib.crc32(data)
    view = memoryview(data)
    crc = 0
    for start in range(0, len(data), _CRC_PIECE):
        crc = zlib.crc32(view[start : start + _CRC_PIECE], crc)
    return crc


def _valid_record_at(data: bytes, at: int) -> int | None:
    """The payload length of the valid record at `at` in `data`, or None."""
    if at + _HEADER.size > len(data):
        return None
    length, crc = _HEADER.unpack_from(data, at)
    start = at + _HEADER.size
    if length > MAX_RECORD_BYTES or start + length > len(data):
        return None
    return length if zlib.crc32(data[start : start + length]) == crc else None


def _resynchronise(data: bytes, at: int) -> int:
    """Where the first valid record after the damaged one at `at` starts (`len(data)`: none).

    The first offset after `at` holding a valid record. When the damaged record's own length
    points at a valid record (a flipped bit in the payload or checksum leaves the length
    right), only the bytes before it are searched (a damaged length could point past one).
    Lengths are little-endian below 16 MiB, so a candidate's fourth byte is zero: `find` skips
    to those, which keeps the scan fast over text.
    """
    end = len(data)
    if at + _HEADER.size <= len(data):
        length: int = struct.unpack_from("<I", data, at)[0]
        following = at + _HEADER.size + length
        if length <= MAX_RECORD_BYTES and _valid_record_at(data, following) is not None:
            # Unless a damaged length points past a valid record: the first one counts.
            end = following
    candidate = at + 1
    while candidate < end:
        zero = data.find(b"\x00", candidate + 3, end + 3)
        if zero < 0:
            break
        candidate = zero - 3
        if _valid_record_at(data, candidate) is not None:
            return candidate
        candidate += 1
    return end


def _torn(data: bytes, at: int) -> bool:
    """Whether the bytes from `at` to the end are a record cut short by a crash: a header
    promising more bytes than follow, or less than a header."""
    if len(data) - at < _HEADER.size:
        return True
    length: int = struct.unpack_from("<I", data, at)[0]
    return at + _HEADER.size + length > len(data)
