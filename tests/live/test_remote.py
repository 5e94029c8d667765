"""The live state served over a Unix socket (`live/remote.py`): what a worker sees when the
engine owner's socket is gone, goes away, or comes back."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from netra_analytics.live import LiveStateGuard, remote
from netra_analytics.live.base import Activity
from netra_analytics.live.memory import InProcessLiveState
from netra_analytics.live.remote import LiveStateServer, LiveStateUnavailable, RemoteLiveState

T0 = 1_764_000_000_000


def test_no_owner_is_unavailable_and_the_guard_falls_back_to_this_process(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        remote = RemoteLiveState(tmp_path / "missing.sock")
        with pytest.raises(LiveStateUnavailable):
            await remote.ping()
        guard = LiveStateGuard(remote, name="owner")
        decision = await guard.take("u1", ["e1", "e2"], T0, 1)
        assert decision.admitted == (True, False)  # decided by this process's own limiter
        assert guard.degraded
        _, source = await guard.totals(T0)
        assert source == "in-process (the engine owner's live state unavailable)"
        await guard.close()

    asyncio.run(scenario())


def test_a_lost_owner_fails_the_calls_in_flight_and_a_new_one_is_used_at_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "live.sock"

    async def scenario() -> None:
        first = LiveStateServer(InProcessLiveState(), path)
        await first.start()
        client = RemoteLiveState(path, timeout=1.0)
        assert (await client.take("u1", ["a"], T0, 5)).remaining == 4
        await first.close()
        with pytest.raises(LiveStateUnavailable):
            await client.take("u1", ["b"], T0, 5)
        second = LiveStateServer(InProcessLiveState(), path)  # a restarted owner: empty state
        await second.start()
        assert (await client.take("u1", ["c"], T0, 5)).remaining == 4
        await client.close()
        await second.close()
        assert not path.exists()

    asyncio.run(scenario())


def test_many_concurrent_calls_on_one_connection_get_their_own_answers(tmp_path: Path) -> None:
    """Multiplexed by id: 300 users' decisions at once, each its own, and a frame of garbage
    from another client does not disturb them."""
    path = tmp_path / "live.sock"

    async def scenario() -> None:
        server = LiveStateServer(InProcessLiveState(), path)
        await server.start()
        _, rogue = await asyncio.open_unix_connection(str(path))
        rogue.write(b"\x00\x00\x00\x03abc")
        client = RemoteLiveState(path)
        decisions = await asyncio.gather(
            *(client.take(f"user-{n}", [f"e{i}" for i in range(n % 7 + 1)], T0, 3)
              for n in range(300))
        )  # fmt: skip
        for n, decision in enumerate(decisions):
            asked = n % 7 + 1
            assert decision.allowed == min(3, asked), n
            assert decision.remaining == max(0, 3 - asked), n
        rogue.close()
        await client.close()
        await server.close()

    asyncio.run(scenario())


def _activity(n: int) -> Activity:
    return Activity(
        at_ms=T0, user_id=f"user-{n}", session_id=f"s-{n}", page_path="/chat", thread_id=None,
        counters={"events": 1.0}, by_type=Counter({"feature_usage": 1}), prompts=[],
    )  # fmt: skip


@contextlib.asynccontextmanager
async def _owner_and_worker(
    path: Path,
) -> AsyncIterator[tuple[InProcessLiveState, RemoteLiveState, LiveStateGuard]]:
    """An owner's live state served on `path`, and a worker's client and guard of it."""
    state = InProcessLiveState()
    server = LiveStateServer(state, path)
    await server.start()
    client = RemoteLiveState(path)
    try:
        yield state, client, LiveStateGuard(client, name="owner")
    finally:
        await client.close()
        await server.close()


def test_records_share_writes_and_go_out_before_a_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One `record` per request, each in its own turn of the loop: they wait for company (a
    handful of writes for fifty, where each went alone before), and a call sent after them takes
    them along, so the owner has them when it answers. `record_nowait` needs an open
    connection: before the first call it says so, and the guard's caller awaits `record`."""
    path = tmp_path / "live.sock"
    writes = 0
    flush = remote._Framed._flush

    def counted(self: remote._Framed) -> None:
        nonlocal writes
        writes += bool(self._outbox) and isinstance(self, remote._ClientSide)
        flush(self)

    monkeypatch.setattr(remote._Framed, "_flush", counted)

    async def scenario() -> None:
        async with _owner_and_worker(path) as (state, client, guard):
            assert not guard.record_nowait(_activity(0))  # not connected yet
            await guard.record(_activity(0))
            for n in range(1, 50):
                assert guard.record_nowait(_activity(n))
                await asyncio.sleep(0)
            await asyncio.sleep(remote.NOTIFICATION_DELAY * 4)
            assert (await state.totals(T0)).active_users == 50
            assert writes <= 10, writes  # fifty without the wait; a loaded machine may split a few
            for n in range(50, 60):
                assert guard.record_nowait(_activity(n))
            await client.take("someone", ["e"], T0, 5)
            assert (await state.totals(T0)).active_users == 60

    asyncio.run(scenario())


def test_records_between_calls_share_one_timer_and_wait_at_most_the_delay(
    tmp_path: Path,
) -> None:
    """Under load a worker sends a call and a record per request: a call's flush takes the
    records along, and one timer per NOTIFICATION_DELAY sends what comes after it (a timer made
    and cancelled per request cost the loop a few µs each), never later than the delay."""
    path = tmp_path / "live.sock"

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        timers = 0
        call_later = loop.call_later

        def counted(delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
            nonlocal timers
            timers += isinstance(getattr(callback, "__self__", None), remote._Framed)
            return call_later(delay, callback, *args)

        async with _owner_and_worker(path) as (state, client, guard):
            await guard.record(_activity(0))  # connects
            loop.call_later = counted  # type: ignore[method-assign, assignment]
            began = loop.time()
            for n in range(1, 41):
                assert guard.record_nowait(_activity(n))
                await client.take(f"someone-{n}", ["e"], T0, 5)
            elapsed = loop.time() - began
            assert guard.record_nowait(_activity(41))  # after the last call: the timer sends it
            await asyncio.sleep(remote.NOTIFICATION_DELAY * 3)
            assert (await state.totals(T0)).active_users == 42
            assert timers <= elapsed / remote.NOTIFICATION_DELAY + 2, (timers, elapsed)

    asyncio.run(scenario())


def test_an_owner_that_does_not_answer_times_out_each_call(tmp_path: Path) -> None:
    """An owner that accepts the connection and never answers (hung): each call fails with
    LiveStateUnavailable after the client's timeout (one sweeping timer: within 1.25 of it),
    nothing is left pending, and the guard decides with this process's own limiter."""
    path = tmp_path / "live.sock"

    async def scenario() -> None:
        received = bytearray()
        writers: list[asyncio.StreamWriter] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            while chunk := await reader.read(65536):
                received.extend(chunk)

        server = await asyncio.start_unix_server(silent, str(path))
        client = RemoteLiveState(path, timeout=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcomes = await asyncio.gather(
            *(client.take(f"u{n}", ["e"], T0, 5) for n in range(5)), return_exceptions=True
        )
        waited = loop.time() - started
        assert all(isinstance(o, LiveStateUnavailable) for o in outcomes), outcomes
        assert "no answer to take within 0.2 s" in str(outcomes[0])
        assert 0.2 <= waited < 0.6, waited
        assert received  # the calls did go out
        connection = client._connection
        assert connection is not None and not connection.pending
        guard = LiveStateGuard(client, name="owner")
        decision = await guard.take("u1", ["a", "b"], T0, 1)
        assert decision.admitted == (True, False) and guard.degraded
        await client.close()
        for writer in writers:
            writer.close()
            await writer.wait_closed()
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())
