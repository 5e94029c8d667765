"""The live state of one process served to others over a Unix socket (several workers, no Redis).

With `ANALYTICS_WORKERS` > 1 and no `REDIS_ANALYTICS_URL`, per-process live state would make
every user's rate limit N times looser and the live reports show one worker's share. So the
engine owner keeps the in-process backend (`InProcessLiveState`) and serves it
(`LiveStateServer`), and each worker uses it through `RemoteLiveState`, which keeps the
`LiveState` contract: a rate-limit decision is taken by the one owner of the windows, so
concurrent workers never admit more than the limit together. With Redis, workers use Redis.

Protocol: frames of `[length u32 big-endian][msgpack]`. A request is `[id, method, args]`, its
answer `[id, true, result]` or `[id, false, error text]`; `record` (one per request) is sent
with id 0 and not answered. Frames written in one turn of the event loop go out together, and
a `record` waits up to NOTIFICATION_DELAY for others to go with.
One persistent connection per client process carries every request at once (multiplexed by
id; the server answers each as soon as it is done, so a slow hot-prompts ranking does not hold
a rate-limit decision). Values cross as msgpack's own types: dataclasses are sent as arrays
of their fields, in order.

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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import msgspec

from netra_analytics.live.base import Activity, LiveState, RateDecision, Totals
from netra_analytics.live.memory import InProcessLiveState

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")
MAX_FRAME_BYTES = 64 << 20  # a cached report is at most 1/8 of the cache (8 MiB by default)
CALL_TIMEOUT = 2.0  # seconds; the Redis client's socket timeout is of the same order
CONNECT_TIMEOUT = 1.0
NOTIFICATION = 0  # the id of a request that wants no answer (`record`)
# How long a notification may wait for company: under load a worker sends one `record` per
# request, and each write on the socket is a system call here and a wake-up of the owner;
# within a few milliseconds they share one. The live panels count by the second.
NOTIFICATION_DELAY = 0.005  # seconds

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
        counters=counters, by_type=by_type, prompts=[tuple(p) for p in prompts],
    )  # fmt: skip


async def _serve_call(state: LiveState, method: str, args: list[Any]) -> Any:
    """Runs one request on `state`; what it returns, in msgpack's types."""
    if method == "take":
        return _decision_reply(await state.take(*args))
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


def _decision_reply(decision: RateDecision) -> list[Any]:
    """A rate decision on the wire (`RemoteLiveState.take` reads it back)."""
    return [list(decision.admitted), decision.limit, decision.remaining, decision.reset_ms]


def _take_now(state: InProcessLiveState, args: list[Any]) -> Any:
    return _decision_reply(state.take_now(*args))


def _record_now(state: InProcessLiveState, args: list[Any]) -> None:
    state.record_now(_activity(args))


# What an in-process state answers without a coroutine (`_serve_call` answers the same).
_NOW = {"take": _take_now, "record": _record_now}

# Methods whose arguments and results are msgpack's types already.
_PLAIN = frozenset({"session", "recent_prompts", "cache_get", "cache_put", "forget",
                    "tag_fired", "ping"})  # fmt: skip


class _Framed(asyncio.Protocol):
    """Length-prefixed frames both ways; what is written in one turn of the event loop goes
    out in one system call (under load, many small replies and requests share it)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._inbox = bytearray()
        self._outbox: list[bytes] = []
        self._soon = False  # a flush is due at the loop's next turn
        self._later: asyncio.TimerHandle | None = None  # a flush due in NOTIFICATION_DELAY

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        inbox = self._inbox
        inbox += data
        at = 0
        while len(inbox) - at >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(inbox, at)
            if length > MAX_FRAME_BYTES:
                log.warning("oversized frame on the live-state socket; closing it")
                assert self.transport is not None
                self.transport.close()
                return
            if len(inbox) - at - _LENGTH.size < length:
                break
            start = at + _LENGTH.size
            frame = bytes(inbox[start : start + length])
            at = start + length
            try:
                self.frame_received(_decode(frame))
            except (msgspec.DecodeError, ValueError, TypeError):
                log.warning("a frame on the live-state socket is not a message; closing it")
                assert self.transport is not None
                self.transport.close()
                return
        del inbox[:at]

    def frame_received(self, message: Any) -> None:
        raise NotImplementedError

    def send(self, message: Any, *, urgent: bool = True) -> None:
        """Queue `message`; it goes out at the loop's next turn, or, not `urgent` (a
        notification), within NOTIFICATION_DELAY, with whatever else is written by then."""
        if self.transport is None or self.transport.is_closing():
            raise LiveStateUnavailable("live-state connection closed")
        payload = _encode(message)
        self._outbox += (_LENGTH.pack(len(payload)), payload)
        if self._soon:
            return
        if urgent:
            self._soon = True
            asyncio.get_running_loop().call_soon(self._flush)
        elif self._later is None:
            # Left to run when an urgent frame flushes first (it then sends what came since):
            # cancelled there, a timer was made and dropped per request under load.
            self._later = asyncio.get_running_loop().call_later(
                NOTIFICATION_DELAY, self._flush_later
            )

    def _flush_later(self) -> None:
        self._later = None
        self._flush()

    def _flush(self) -> None:
        self._soon = False
        out, self._outbox = self._outbox, []
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))


class _ServerSide(_Framed):
    def __init__(self, server: LiveStateServer) -> None:
        super().__init__()
        self.server = server
        self.calls: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        for call in self.calls:
            call.cancel()

    def frame_received(self, message: Any) -> None:
        call_id, method, args = message
        state = self.server.state
        if method in _NOW and isinstance(state, InProcessLiveState):
            # Every request's two calls: answered here, without a task each to create, schedule
            # and finish.
            try:
                reply = [call_id, True, _NOW[method](state, args)]
            except Exception as exc:
                reply = [call_id, False, f"{type(exc).__name__}: {str(exc)[:300]}"]
            if call_id != NOTIFICATION:
                with contextlib.suppress(LiveStateUnavailable):
                    self.send(reply)
            return
        call = asyncio.ensure_future(self._answer(call_id, method, args))
        self.calls.add(call)
        call.add_done_callback(self.calls.discard)

    async def _answer(self, call_id: int, method: str, args: list[Any]) -> None:
        try:
            reply = [call_id, True, await _serve_call(self.server.state, method, args)]
        except Exception as exc:
            reply = [call_id, False, f"{type(exc).__name__}: {str(exc)[:300]}"]
        if call_id != NOTIFICATION:
            with contextlib.suppress(LiveStateUnavailable):
                self.send(reply)


class LiveStateServer:
    """Serves `state` on the Unix socket `path` from the running event loop."""

    def __init__(self, state: LiveState, path: Path) -> None:
        self.state = state
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        self.connections: set[_ServerSide] = set()

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)  # left by a process that was killed
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _ServerSide(self), str(self.path))
        self.path.chmod(0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for connection in list(self.connections):
                if connection.transport is not None:
                    connection.transport.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        self.path.unlink(missing_ok=True)


class _ClientSide(_Framed):
    def __init__(self, client: RemoteLiveState) -> None:
        super().__init__()
        self.client = client
        # Each pending call's future, its deadline on the loop's clock and its method, in the
        # order sent: the timeout is the client's, the same for all, so the oldest is first.
        self.pending: dict[int, tuple[asyncio.Future[Any], float, str]] = {}
        self._sweep: asyncio.TimerHandle | None = None

    def expect(self, call_id: int, method: str) -> asyncio.Future[Any]:
        """The future of a call about to be sent, failed with LiveStateUnavailable if no
        answer comes within the client's timeout (give or take a quarter of it). One timer for
        all calls, not one each: a worker makes a call per request."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.pending[call_id] = (future, loop.time() + self.client.timeout, method)
        if self._sweep is None:
            self._sweep = loop.call_later(self.client.timeout / 4, self._expire)
        return future

    def forget(self, call_id: int) -> None:
        self.pending.pop(call_id, None)

    def _expire(self) -> None:
        self._sweep = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for call_id, (future, deadline, method) in list(self.pending.items()):
            if deadline > now:
                break
            del self.pending[call_id]
            if not future.done():
                future.set_exception(LiveStateUnavailable(
                    f"live state at {self.client.path}: no answer to {method} "
                    f"within {self.client.timeout:g} s"
                ))  # fmt: skip
        if self.pending:
            self._sweep = loop.call_later(self.client.timeout / 4, self._expire)

    def frame_received(self, message: Any) -> None:
        call_id, ok, result = message
        entry = self.pending.pop(call_id, None)
        if entry is None or entry[0].done():
            return  # its caller timed out
        if ok:
            entry[0].set_result(result)
        else:
            entry[0].set_exception(RemoteError(result))

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._lost(self)
        lost = LiveStateUnavailable(f"live state at {self.client.path}: connection lost")
        for future, _, _ in self.pending.values():
            if not future.done():
                future.set_exception(lost)
        self.pending.clear()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None


class RemoteLiveState:
    """The `LiveState` of the process serving `path` (`LiveStateServer`)."""

    def __init__(self, path: Path, *, timeout: float = CALL_TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._connection: _ClientSide | None = None
        self._connecting: asyncio.Lock | None = None

    async def _connected(self) -> _ClientSide:
        connection = self._connection
        transport = None if connection is None else connection.transport
        if connection is not None and transport is not None and not transport.is_closing():
            return connection
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._connection is None:
                loop = asyncio.get_running_loop()
                try:
                    _, protocol = await asyncio.wait_for(
                        loop.create_unix_connection(lambda: _ClientSide(self), str(self.path)),
                        CONNECT_TIMEOUT,
                    )
                except (OSError, TimeoutError) as exc:
                    raise LiveStateUnavailable(f"live state at {self.path}: {exc}") from None
                self._connection = protocol
        assert self._connection is not None
        return self._connection

    def _lost(self, connection: _ClientSide) -> None:
        if self._connection is connection:
            self._connection = None

    async def _call(self, method: str, *args: Any) -> Any:
        connection = await self._connected()
        call_id = next(self._ids)
        future = connection.expect(call_id, method)
        try:
            connection.send([call_id, method, list(args)])
            return await future
        finally:
            connection.forget(call_id)

    async def _notify(self, method: str, *args: Any) -> None:
        """A call without answer: its errors on the other side are not reported."""
        (await self._connected()).send([NOTIFICATION, method, list(args)], urgent=False)

    def record_nowait(
        self, activity: Activity, on_error: Callable[[Activity, Exception], None]
    ) -> None:
        """`record` without a coroutine, on the open connection; LiveStateUnavailable when
        there is none (the caller then uses `record`, which connects). A notification lost
        with its connection is not reported (`on_error` is not called), as with `record`."""
        connection = self._connection
        if connection is None:
            raise LiveStateUnavailable(f"live state at {self.path}: not connected")
        connection.send([NOTIFICATION, "record", _activity_args(activity)], urgent=False)

    async def take(
        self, user_id: str, event_ids: Sequence[str], now_ms: int, limit: int
    ) -> RateDecision:
        admitted, limit, remaining, reset_ms = await self._call(
            "take", user_id, list(event_ids), now_ms, limit
        )
        return RateDecision(tuple(admitted), limit, remaining, reset_ms)

    async def record(self, activity: Activity) -> None:
        # The most frequent call (one per request) and nothing waits on it: no answer.
        await self._notify("record", *_activity_args(activity))

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

    async def used_memory(self) -> int | None:
        """None: the owner keeps the live state in its own memory, as one process does."""
        return None

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and connection.transport is not None:
            connection.transport.close()
