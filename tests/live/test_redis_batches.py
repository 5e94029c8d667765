"""The Redis backend sends the calls of many requests as one script run (`Coalescer`,
`LiveBatch`): whatever the batches, it must end where the in-process state ends when the same
calls come one at a time, and a failed batch must fail every call in it, and only those."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import Any

import pytest
import redis as redis_sync
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netra_analytics.live.base import Activity, RateDecision
from netra_analytics.live.memory import InProcessLiveState
from netra_analytics.live.redis_backend import MAX_BATCH, Backlogged, Coalescer, RedisLiveState

T0 = 1_764_000_000_000
_prefixes = itertools.count()

USERS = [f"u{i}" for i in range(4)]
SESSIONS = [f"s{i}" for i in range(5)]
PROMPTS = [(f"h{i}", f"question {i}") for i in range(6)]


@st.composite
def _activity(draw: st.DrawFn, at_ms: int) -> Activity:
    events = draw(st.integers(1, 20))
    chat = draw(st.integers(0, events))
    ai_ms = draw(st.lists(st.integers(1, 30_000), max_size=chat))
    return Activity(
        at_ms=at_ms,
        user_id=draw(st.sampled_from(USERS)),
        session_id=draw(st.sampled_from(SESSIONS)),
        page_path=draw(st.sampled_from(["", "/chat", "/costs", "/settings"])),
        thread_id=draw(st.sampled_from([None, "t1", "t2"])),
        counters={
            "events": float(events),
            "chat_messages": float(chat),
            "ai_response_ms_sum": float(sum(ai_ms)),
            "ai_response_count": float(len(ai_ms)),
            "errors": float(draw(st.integers(0, events - chat))),
        },
        by_type=Counter({"chat_interaction": chat, "feature_usage": events - chat}),
        prompts=draw(st.lists(st.sampled_from(PROMPTS), max_size=chat)),
    )


@st.composite
def _calls(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """Takes and records in the order the requests made them, the clock moving on."""
    calls: list[tuple[str, Any]] = []
    at = T0
    for _ in range(draw(st.integers(1, 60))):
        at += draw(st.integers(0, 40_000))  # windows slide, 10 s buckets and seconds change
        if draw(st.booleans()):
            # Ids from a small pool: a retried id passes without counting again.
            ids = draw(st.lists(st.sampled_from([f"e{i}" for i in range(40)]), max_size=12))
            calls.append(("take", (draw(st.sampled_from(USERS)), ids, at, 15)))
        else:
            calls.append(("record", draw(_activity(at))))
    return calls


async def _apply(state: Any, calls: list[tuple[str, Any]], together: bool) -> list[Any]:
    """Every call, all at once (one turn of the loop: the Redis backend batches them) or one
    after the other, then everything the contract can read."""
    coroutines = [state.take(*args) if kind == "take" else state.record(args)
                  for kind, args in calls]  # fmt: skip
    if together:
        results = await asyncio.gather(*coroutines)
    else:
        results = [await c for c in coroutines]
    now = max(args[2] if kind == "take" else args.at_ms for kind, args in calls)
    sessions = {s: await state.session(s, now) for s in SESSIONS}
    return [results, await state.totals(now), sessions, await state.hot_prompts(now, 100),
            await state.recent_prompts()]  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(calls=_calls())
def test_batched_calls_end_where_one_at_a_time_ends(
    redis_server: Any, calls: list[tuple[str, Any]]
) -> None:
    prefix = f"batch{next(_prefixes)}:"

    async def on_redis() -> list[Any]:
        state = RedisLiveState(redis_server.url, prefix=prefix)
        try:
            return await _apply(state, calls, together=True)
        finally:
            await state.close()

    shared = asyncio.run(on_redis())
    local = asyncio.run(_apply(InProcessLiveState(), calls, together=False))
    # The decisions, the per-second counters, the distinct counts (a handful: HyperLogLog is
    # exact there), every session, the hot prompts and the recent list.
    assert shared == local
    # Each second's hash, the per-type counts included (the contract reads none of them).
    expected: dict[int, Counter[str]] = {}
    for kind, activity in calls:
        if kind == "record":
            second = expected.setdefault(activity.at_ms // 1000, Counter())
            second.update({k: v for k, v in activity.counters.items() if v})
            second.update({f"type:{t}": c for t, c in activity.by_type.items() if c})
    admin = redis_sync.Redis.from_url(redis_server.url, decode_responses=True)
    stored = {
        int(key.rsplit(":", 1)[1]): Counter({f: float(v) for f, v in admin.hgetall(key).items()})
        for key in admin.scan_iter(f"{prefix}real_time_metrics:*")
        if key.rsplit(":", 1)[1].isdigit() and ":users:" not in key and ":chat_sessions:" not in key
    }
    assert stored == {s: c for s, c in expected.items() if c}


def test_more_concurrent_takes_than_a_batch_holds_admit_exactly_the_limit(
    redis_server: Any,
) -> None:
    async def main() -> list[RateDecision]:
        state = RedisLiveState(redis_server.url, prefix=f"batch{next(_prefixes)}:")
        try:
            return await asyncio.gather(
                *(state.take("u1", [f"e{i}"], T0 + i, limit) for i in range(calls))
            )
        finally:
            await state.close()

    calls, limit = 3 * MAX_BATCH, 2 * MAX_BATCH + MAX_BATCH // 2  # the limit falls mid-batch
    decisions = asyncio.run(main())
    assert [d.allowed for d in decisions] == [1] * limit + [0] * (calls - limit)
    assert [d.remaining for d in decisions] == [max(0, limit - i - 1) for i in range(calls)]


def test_a_failed_batch_fails_each_of_its_calls_and_the_next_batch_still_goes() -> None:
    sent: list[list[int]] = []

    async def send(items: list[int]) -> list[int]:
        sent.append(items)
        await asyncio.sleep(0)
        if 13 in items:
            raise ConnectionError("lost")
        return [i * 2 for i in items]

    async def main() -> tuple[list[Any], list[Any]]:
        coalescer: Coalescer[int, int] = Coalescer(send, max_batch=4)
        first = await asyncio.gather(*(coalescer.call(i) for i in range(10, 16)),
                                     return_exceptions=True)  # fmt: skip
        second = await asyncio.gather(coalescer.call(1), coalescer.call(2))
        return list(first), list(second)

    first, second = asyncio.run(main())
    assert sent[:2] == [[10, 11, 12, 13], [14, 15]]  # at most max_batch a run, in order
    assert all(isinstance(r, ConnectionError) for r in first[:4])
    assert first[4:] == [28, 30]
    assert second == [2, 4] and sent[2] == [1, 2]


def test_a_caller_that_gives_up_does_not_disturb_the_others() -> None:
    async def main() -> tuple[Any, Any]:
        gate = asyncio.Event()

        async def send(items: list[str]) -> list[str]:
            await gate.wait()
            return [item.upper() for item in items]

        coalescer: Coalescer[str, str] = Coalescer(send, max_batch=8)
        impatient = asyncio.ensure_future(coalescer.call("a"))
        patient = asyncio.ensure_future(coalescer.call("b"))
        await asyncio.sleep(0.01)
        impatient.cancel()
        gate.set()
        return await asyncio.gather(impatient, patient, return_exceptions=True)

    impatient, patient = asyncio.run(main())
    assert isinstance(impatient, asyncio.CancelledError) and patient == "B"


def test_closing_fails_the_calls_still_waiting() -> None:
    async def main() -> list[Any]:
        gate = asyncio.Event()

        async def send(items: list[int]) -> list[int]:
            await gate.wait()
            return items

        coalescer: Coalescer[int, int] = Coalescer(send, max_batch=1)
        calls = [asyncio.ensure_future(coalescer.call(i)) for i in range(3)]
        await asyncio.sleep(0.01)
        await coalescer.close()
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(main())
    assert isinstance(results[0], asyncio.CancelledError)  # the one in flight
    assert all(isinstance(r, ConnectionError) for r in results[1:])  # never sent


def _evalsha_calls(admin: Any) -> int:
    return int(admin.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


@pytest.mark.parametrize("requests", [1, 40])
def test_takes_and_records_made_together_are_one_script_run(
    redis_server: Any, requests: int
) -> None:
    """The takes of a turn of the loop and the records queued beside them (`record_nowait`)
    leave as one EVALSHA however many requests made them, and each lands."""
    admin = redis_sync.Redis.from_url(redis_server.url, decode_responses=True)
    prefix = f"batch{next(_prefixes)}:"
    failed: list[Exception] = []

    def activity(i: int) -> Activity:
        return Activity(T0, f"u{i}", f"s{i}", "/chat", None, {"events": 1.0},
                        Counter(page_view=1), [])  # fmt: skip

    async def main() -> list[RateDecision]:
        state = RedisLiveState(redis_server.url, prefix=prefix)
        try:
            await state.take("warm", ["e"], T0, 100)  # loads the script, outside what is counted
            before = _evalsha_calls(admin)
            takes = [asyncio.ensure_future(state.take(f"u{i}", [f"e{i}"], T0, 100))
                     for i in range(requests)]  # fmt: skip
            for i in range(requests):
                state.record_nowait(activity(i), lambda _, error: failed.append(error))
            decisions = await asyncio.gather(*takes)
            assert _evalsha_calls(admin) - before == 1
            return decisions
        finally:
            await state.close()

    decisions = asyncio.run(main())
    assert [d.allowed for d in decisions] == [1] * requests and not failed
    sessions = [admin.hgetall(f"{prefix}user_session_cache:s{i}") for i in range(requests)]
    assert [s["user_id"] for s in sessions] == [f"u{i}" for i in range(requests)]
    assert admin.hget(f"{prefix}real_time_metrics:{T0 // 1000}", "events") == str(requests)


def test_a_record_queued_without_waiting_reaches_the_local_state_when_redis_is_down() -> None:
    """An update nobody awaits is not lost when its batch fails: the guard records it in process,
    turns degraded and counts the fallback, as when an awaited `record` fails."""
    from prometheus_client import REGISTRY

    from netra_analytics.live import LiveStateGuard
    from tests.support.processes import free_port

    def fallbacks() -> float:
        name, labels = "netra_live_state_fallbacks_total", {"operation": "record"}
        return REGISTRY.get_sample_value(name, labels) or 0.0

    async def main() -> tuple[bool, bool, float, Any]:
        guard = LiveStateGuard(RedisLiveState(f"redis://127.0.0.1:{free_port()}/2", timeout=0.2))
        before = fallbacks()
        try:
            queued = guard.record_nowait(
                Activity(T0, "u1", "s1", "/chat", None, {"events": 3.0}, Counter(page_view=3), [])
            )
            for _ in range(100):  # the batch goes on the next turn and fails within the timeout
                await asyncio.sleep(0.02)
                if guard.degraded:
                    break
            # While Redis is down, an update is not queued for it: the caller awaits `record`.
            again = guard.record_nowait(Activity(T0, "u2", "s2", "", None, {}, Counter(), []))
            return queued, again, fallbacks() - before, guard.local
        finally:
            await guard.close()

    queued, again, counted, local = asyncio.run(main())
    assert queued and not again and counted == 1
    session = asyncio.run(local.session("s1", T0))
    assert session is not None and session["user_id"] == "u1" and session["event_count"] == "3"


def test_the_batches_connection_survives_a_script_flush_and_a_killed_connection(
    redis_server: Any,
) -> None:
    """The batches go on their own connection (`_run_live`): Redis forgetting the script
    (SCRIPT FLUSH, a restart) or dropping the connection costs no call, and closing the state
    closes that connection too."""
    admin = redis_sync.Redis.from_url(redis_server.url, decode_responses=True)

    def clients() -> int:
        return sum(1 for c in admin.client_list() if c["name"] == "" and c["cmd"] != "client|list")

    async def main() -> tuple[list[int], int]:
        state = RedisLiveState(redis_server.url, prefix=f"batch{next(_prefixes)}:")
        allowed = []
        try:
            allowed.append((await state.take("u", ["e1"], T0, 10)).allowed)
            admin.script_flush()
            allowed.append((await state.take("u", ["e2"], T0, 10)).allowed)
            admin.client_kill_filter(_type="normal", skipme=True)
            allowed.append((await state.take("u", ["e3"], T0, 10)).allowed)
            during = clients()
        finally:
            await state.close()
        assert during >= 1
        return allowed, clients()

    allowed, after = asyncio.run(main())
    assert allowed == [1, 1, 1]
    assert after == 0
    assert admin.zcard(next(iter(admin.scan_iter("batch*:event_rate_limiter:u")))) == 3


def test_closing_sends_what_is_queued_before_it_cancels(redis_server: Any) -> None:
    """A service stopping under load closes the live state with updates still queued: they
    reach Redis (within CLOSE_DRAIN_SECONDS), not the in-process state thrown away at exit."""
    admin = redis_sync.Redis.from_url(redis_server.url, decode_responses=True)
    prefix = f"batch{next(_prefixes)}:"
    failed: list[Exception] = []

    async def main() -> None:
        state = RedisLiveState(redis_server.url, prefix=prefix)
        take = asyncio.ensure_future(state.take("u0", ["e0"], T0, 100))
        await asyncio.sleep(0)  # the take's batch is on its way: the updates queue behind it
        for i in range(300):  # more than a batch holds
            state.record_nowait(
                Activity(T0, f"u{i}", f"s{i}", "/chat", None, {"events": 1.0}, Counter(), []),
                lambda _, error: failed.append(error),
            )
        await state.close()
        assert (await take).allowed == 1
        with pytest.raises(ConnectionError):  # closed: nothing more is sent
            await state.take("u1", ["e1"], T0, 100)

    asyncio.run(main())
    assert not failed
    assert admin.hget(f"{prefix}real_time_metrics:{T0 // 1000}", "events") == "300"


def test_a_coalescer_closed_before_its_sender_ran_answers_everything_queued() -> None:
    heard: list[tuple[int, str]] = []

    async def send(items: list[int]) -> list[int]:
        return items

    async def main() -> Any:
        coalescer: Coalescer[int, int] = Coalescer(send, max_batch=4)
        coalescer.submit(1, lambda item, error: heard.append((item, type(error).__name__)))
        waiting = asyncio.ensure_future(coalescer.call(2))  # queues when it runs: after close
        await coalescer.close()  # in the same turn: the sender has not run a step
        coalescer.submit(3, lambda item, error: heard.append((item, type(error).__name__)))
        return await asyncio.gather(waiting, coalescer.call(4), return_exceptions=True)

    waiting, later = asyncio.run(main())
    assert heard == [(1, "ConnectionError"), (3, "ConnectionError")]
    assert isinstance(waiting, ConnectionError) and isinstance(later, ConnectionError)


def test_a_failing_callback_leaves_the_rest_of_its_batch_answered() -> None:
    heard: list[int] = []

    async def send(items: list[int]) -> list[int]:
        raise ConnectionError("lost")

    def broken(item: int, error: Exception) -> None:
        raise RuntimeError("a bug in a callback")

    async def main() -> Any:
        coalescer: Coalescer[int, int] = Coalescer(send, max_batch=8)
        coalescer.submit(1, broken)
        coalescer.submit(2, lambda item, error: heard.append(item))
        return await asyncio.gather(coalescer.call(3), return_exceptions=True)

    (result,) = asyncio.run(main())
    assert isinstance(result, ConnectionError) and heard == [2]


def test_submissions_past_the_queue_bound_are_refused_and_the_queued_ones_still_go() -> None:
    sent: list[list[int]] = []

    async def main() -> None:
        gate = asyncio.Event()

        async def send(items: list[int]) -> list[int]:
            await gate.wait()
            sent.append(items)
            return items

        coalescer: Coalescer[int, int] = Coalescer(send, max_batch=2, max_queued=3)
        for i in range(3):
            coalescer.submit(i, lambda item, error: None)
        with pytest.raises(Backlogged):  # a ConnectionError: the guard then awaits `record`
            coalescer.submit(3, lambda item, error: None)
        await asyncio.sleep(0)  # the first batch (two) leaves the queue
        coalescer.submit(3, lambda item, error: None)
        gate.set()
        await coalescer.close(drain_seconds=1.0)

    asyncio.run(main())
    assert sent == [[0, 1], [2, 3]]
