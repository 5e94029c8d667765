"""The live state of one process served to others over a Unix socket (several workers, no Redis).

With `ANALYTICS_WORKERS` > 1 and no `REDIS_ANALYTICS_URL`, per-process live state would make
every user's rate limit N times looser and the live reports show one worker's share. So the
engine owner keeps the in-process backend (`InProcessLiveState`) and serves it
(`LiveStateServer`), and each worker uses it through `RemoteLiveState`, which keeps the
`LiveState` contract: a rate-limit decision is taken by the one owner of the windows, so
concurrent workers never admit more than the limit together. With Redis, workers use Redis.

Protocol: frames of `[length u32 big-endian][msgpack]`. A request is `[id, method, args]`, its
answer `[id, true, result]` or `[id, false, error text]`. One persistent connection per
client process carries every request at once (multiplexed by id; the server answers each as
soon as it is done, so a slow hot-prompts ranking does not hold a rate-limit decision). Values
cross as msgpack's own types: dataclasses are sent as arrays of their fields, in order.

A call without answer in `CALL_TIMEOUT` seconds, or a lost connection, raises: the caller
(`LiveStateGuard`) then falls back to its process's own state, as when Redis is down, and
tries the owner again a second later. A client reconnects on its next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import struct
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from netra_analytics.live.base import Activity, LiveState, RateDecision, Totals

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")
MAX_FRAME_BYTES = 64 << 20  # a cached report is at most 1/8 of the cache (8 MiB by default)
CALL_TIMEOUT = 2.0  # seconds; the Redis client's socket timeout is of the same order
CONNECT_TIMEOUT = 1.0

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


class LiveStateUnavailable(ConnectionError):
    """The owner's live state did not answer (not running, connection lost, or too slow)."""


class RemoteError(RuntimeError):
    """The owner's live state raised while answering; the text is its error's."""


def _activity_args(activity: Activity) -> list[Any]:
    a = activity
    return [a.at_ms, a.user_id, a.session_id, a.page_path, a.thread_id, a.counters,
            dict(a.by_type), [list(p) for p in a.prompts]]  # fmt: skip


def _activity(args: Sequence[Any]) -> Activity:
    at_ms, user, session, page, thread, counters, by_type, prompts = args
    return Activity(
        at_ms=at_ms, user_id=user, session_id=session, page_path=page, thread_id=thread,
        counters=counters, by_type=Counter(by_type), prompts=[tuple(p) for p in prompts],
    )  # fmt: skip


async def _serve_call(state: LiveState, method: str, args: list[Any]) -> Any:
    """Runs one request on `state`; what it returns, in msgpack's types."""
    if method == "take":
        decision = await state.take(*args)
        return [list(decision.admitted), decision.limit, decision.remaining, decision.reset_ms]
    if method == "record":
        return await state.record(_activity(args))
    if method == "totals":
        t = await state.totals(*args)
        return [t.last_minute_events, t.window, t.active_users, t.active_chat_sessions]
    if method == "hot_prompts":
        return [list(row) for row in await state.hot_prompts(*args)]
    if method == "tag_heartbeats":
        return {k: list(v) for k, v in (await state.tag_heartbeats()).items()}
    if method in _PLAIN:
        return await getattr(state, method)(*args)
    raise RemoteError(f"unknown method {method[:40]!r}")


# Methods whose arguments and results are msgpack's types already.
_PLAIN = frozenset({"session", "recent_prompts", "cache_get", "cache_put", "forget",
                    "tag_fired", "ping"})  # fmt: skip


class LiveStateServer:
    """Serves `state` on the Unix socket `path` from the running event loop."""

    def __init__(self, state: LiveState, path: Path) -> None:
        self.state = state
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)  # left by a process that was killed
        self._server = await asyncio.start_unix_server(self._connection, path=str(self.path))
        self.path.chmod(0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self.path.unlink(missing_ok=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        calls: set[asyncio.Task[None]] = set()
        try:
            while True:
                head = await reader.readexactly(_LENGTH.size)
                (length,) = _LENGTH.unpack(head)
                if length > MAX_FRAME_BYTES:
                    log.warning("live-state client sent an oversized frame; closing it")
                    return
                call_id, method, args = _decode(await reader.readexactly(length))
                call = asyncio.create_task(self._answer(writer, call_id, method, args))
                calls.add(call)
                call.add_done_callback(calls.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        except (msgspec.DecodeError, ValueError, TypeError):
            log.warning("live-state client sent a frame that is not a request; closing it")
        finally:
            self._tasks.discard(task)
            for call in calls:
                call.cancel()
            writer.close()

    async def _answer(
        self, writer: asyncio.StreamWriter, call_id: int, method: str, args: list[Any]
    ) -> None:
        try:
            reply = [call_id, True, await _serve_call(self.state, method, args)]
        except Exception as exc:
            reply = [call_id, False, f"{type(exc).__name__}: {str(exc)[:300]}"]
        payload = _encode(reply)
        if writer.is_closing():
            return
        writer.write(_LENGTH.pack(len(payload)) + payload)
        with contextlib.suppress(ConnectionError):
            await writer.drain()


class RemoteLiveState:
    """The `LiveState` of the process serving `path` (`LiveStateServer`)."""

    def __init__(self, path: Path, *, timeout: float = CALL_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._connecting: asyncio.Lock | None = None

    async def _connected(self) -> asyncio.StreamWriter:
        if self._writer is not None and not self._writer.is_closing():
            return self._writer
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._writer is None or self._writer.is_closing():
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_unix_connection(str(self.path)), CONNECT_TIMEOUT
                    )
                except (OSError, TimeoutError) as exc:
                    raise LiveStateUnavailable(f"live state at {self.path}: {exc}") from None
                self._writer = writer
                self._reading = asyncio.create_task(self._read(reader, writer))
        assert self._writer is not None
        return self._writer

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
                call_id, ok, result = _decode(await reader.readexactly(length))
                future = self._pending.pop(call_id, None)
                if future is None or future.done():
                    continue  # its caller timed out
                if ok:
                    future.set_result(result)
                else:
                    future.set_exception(RemoteError(result))
        except (asyncio.IncompleteReadError, ConnectionError, msgspec.DecodeError, ValueError):
            pass
        finally:
            if self._writer is writer:
                self._writer = None
            writer.close()
            lost = LiveStateUnavailable(f"live state at {self.path}: connection lost")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(lost)
            self._pending.clear()

    async def _call(self, method: str, *args: Any) -> Any:
        writer = await self._connected()
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        payload = _encode([call_id, method, list(args)])
        writer.write(_LENGTH.pack(len(payload)) + payload)
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise LiveStateUnavailable(
                f"live state at {self.path}: no answer to {method} within {self.timeout:g} s"
            ) from None
        finally:
            self._pending.pop(call_id, None)

    async def take(
        self, user_id: str, event_ids: Sequence[str], now_ms: int, limit: int
    ) -> RateDecision:
        admitted, limit, remaining, reset_ms = await self._call(
            "take", user_id, list(event_ids), now_ms, limit
        )
        return RateDecision(tuple(admitted), limit, remaining, reset_ms)

    async def record(self, activity: Activity) -> None:
        await self._call("record", *_activity_args(activity))

    async def totals(self, now_ms: int) -> Totals:
        return Totals(*await self._call("totals", now_ms))

    async def session(self, session_id: str, now_ms: int) -> dict[str, str] | None:
        found: dict[str, str] | None = await self._call("session", session_id, now_ms)
        return found

    async def recent_prompts(self) -> list[str]:
        found: list[str] = await self._call("recent_prompts")
        return found

    async def hot_prompts(self, now_ms: int, limit: int) -> list[tuple[str, str, int]]:
        return [(d, t, c) for d, t, c in await self._call("hot_prompts", now_ms, limit)]

    async def cache_get(self, key: str) -> bytes | None:
        found: bytes | None = await self._call("cache_get", key)
        return found

    async def cache_put(self, key: str, value: bytes, ttl_seconds: int) -> None:
        await self._call("cache_put", key, value, ttl_seconds)

    async def forget(self, user_ids: Sequence[str], prompt_hashes: Sequence[str]) -> int:
        removed: int = await self._call("forget", list(user_ids), list(prompt_hashes))
        return removed

    async def tag_fired(self, container: str, version: str, now_ms: int) -> None:
        await self._call("tag_fired", container, version, now_ms)

    async def tag_heartbeats(self) -> dict[str, tuple[int, str]]:
        found = await self._call("tag_heartbeats")
        return {container: (at, version) for container, (at, version) in found.items()}

    async def ping(self) -> None:
        await self._call("ping")

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reading
