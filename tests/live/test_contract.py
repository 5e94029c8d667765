"""One contract, two backends: the in-process state and a real redis-server."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from netra_analytics.live.base import Activity, LiveState, Totals, engagement
from netra_analytics.live.redis_backend import RedisLiveState

T0 = 1_764_000_000_000  # a fixed epoch-ms "now"; every test moves its own clock


def _run(factory: Callable[[], LiveState], scenario: Callable[[LiveState], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        state = factory()
        try:
            return await scenario(state)
        finally:
            await state.close()

    return asyncio.run(main())


def _ids(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def _activity(at_ms: int, user: str = "u1", session: str = "s1", *, events: int = 1, chat: int = 0,
              ai_ms: list[float] | None = None, errors: int = 0, page: str = "/chat",
              thread: str | None = None, prompts: list[tuple[str, str]] | None = None) -> Activity:  # fmt: skip
    ai_ms = ai_ms or []
    return Activity(
        at_ms=at_ms, user_id=user, session_id=session, page_path=page, thread_id=thread,
        counters={"events": float(events), "chat_messages": float(chat),
                  "ai_response_ms_sum": float(sum(ai_ms)), "ai_response_count": float(len(ai_ms)),
                  "errors": float(errors)},
        by_type=Counter({"chat_interaction": chat, "feature_usage": events - chat}),
        prompts=prompts or [],
    )  # fmt: skip


def test_limit_counts_events_across_calls(backend_factory: Any) -> None:
    async def scenario(state: LiveState) -> None:
        first = await state.take("u1", _ids("a", 800), T0, 1000)
        assert first.allowed == 800 and first.remaining == 200
        crossing = await state.take("u1", _ids("b", 400), T0 + 10, 1000)
        assert crossing.admitted == (True,) * 200 + (False,) * 200
        assert crossing.remaining == 0
        assert crossing.reset_ms == T0 + 60_000  # when the first 800 leave the window
        after = await state.take("u1", _ids("c", 5), T0 + 20, 1000)
        assert after.allowed == 0 and after.retry_after_seconds(T0 + 20) == 60
        other = await state.take("u2", _ids("d", 10), T0 + 20, 1000)
        assert other.allowed == 10 and other.remaining == 990

    _run(backend_factory, scenario)


def test_many_small_batches_admit_exactly_the_limit(backend_factory: Any) -> None:
    async def scenario(state: LiveState) -> None:
        admitted = 0
        for batch in range(120):
            decision = await state.take("u1", _ids(f"b{batch}", 10), T0 + batch * 100, 1000)
            admitted += decision.allowed
        assert admitted == 1000

    _run(backend_factory, scenario)


def test_concurrent_callers_never_pass_the_limit(backend_factory: Any) -> None:
    async def scenario(state: LiveState) -> None:
        decisions = await asyncio.gather(
            *(state.take("u1", _ids(f"c{i}", 7), T0, 100) for i in range(40))
        )
        assert sum(d.allowed for d in decisions) == 100

    _run(backend_factory, scenario)


def test_window_slides(backend_factory: Any) -> None:
    async def scenario(state: LiveState) -> None:
        assert (await state.take("u1", _ids("early", 600), T0, 1000)).allowed == 600
        assert (await state.take("u1", _ids("late", 600), T0 + 30_000, 1000)).allowed == 400
        # 59.999 s after the first batch it still counts; at 60 s it has left the window.
        assert (await state.take("u1", _ids("x", 1), T0 + 59_999, 1000)).allowed == 0
        slid = await state.take("u1", _ids("y", 700), T0 + 60_000, 1000)
        assert slid.allowed == 600  # the 600 early ones are gone, the 400 late ones remain
        assert slid.reset_ms == T0 + 30_000 + 60_000

    _run(backend_factory, scenario)


def test_a_retried_event_id_passes_without_counting_twice(backend_factory: Any) -> None:
    async def scenario(state: LiveState) -> None:
        assert (await state.take("u1", _ids("a", 10), T0, 10)).allowed == 10
        retry = await state.take("u1", _ids("a", 10), T0 + 5, 10)
        assert retry.allowed == 10 and retry.remaining == 0
        assert (await state.take("u1", ["new"], T0 + 6, 10)).allowed == 0

    _run(backend_factory, scenario)


def test_totals_and_engagement(backend_factory: Any) -> None:
    async def scenario(state: LiveState) -> Totals:
        now = T0 + 400_000
        await state.record(_activity(now - 400_000, user="gone", events=50))  # outside 5 minutes
        await state.record(_activity(now - 200_000, user="u1", session="s1", events=10, chat=4,
                                     ai_ms=[1000, 3000], errors=1))  # fmt: skip
        await state.record(_activity(now - 30_000, user="u2", session="s2", events=20, chat=2,
                                     ai_ms=[500], errors=3))  # fmt: skip
        await state.record(_activity(now - 1_000, user="u1", session="s3", events=30))
        return await state.totals(now)

    totals = _run(backend_factory, scenario)
    assert totals.window == {"events": 60.0, "chat_messages": 6.0, "ai_response_ms_sum": 4500.0,
                             "ai_response_count": 3.0, "errors": 4.0}  # fmt: skip
    assert totals.last_minute_events == 50.0
    assert totals.active_users == 2  # u1 and u2; "gone" left the window
    assert totals.active_chat_sessions == 2  # s1 and s2 sent chat messages
    numbers = engagement(totals, T0)
    assert numbers.avg_ai_response_ms == pytest.approx(1500.0)
    assert numbers.error_rate_percent == pytest.approx(100 * 4 / 60)
    assert numbers.events_per_second == pytest.approx(50 / 60)


def test_empty_engagement_has_no_averages(backend_factory: Any) -> None:
    totals = _run(backend_factory, lambda state: state.totals(T0))
    numbers = engagement(totals, T0)
    assert (numbers.active_users, numbers.events_per_second) == (0, 0.0)
    assert numbers.avg_ai_response_ms is None and numbers.error_rate_percent is None


def test_sessions(backend_factory: Any) -> None:
    async def scenario(state: LiveState) -> tuple[Any, Any, Any]:
        await state.record(_activity(T0, session="s1", events=3, page="/chat", thread="t1"))
        await state.record(_activity(T0 + 5_000, session="s1", events=2, page="/costs"))
        await state.record(_activity(T0 + 6_000, session="s1", events=1, page="/chat"))
        return (await state.session("s1", T0 + 7_000), await state.session("nope", T0),
                await state.session("s1", T0 + 6_000 + 3_600_000))  # fmt: skip

    found, missing, expired = _run(backend_factory, scenario)
    assert found == {"user_id": "u1", "first_seen": str(T0), "last_seen": str(T0 + 6_000),
                     "event_count": "6", "current_page": "/chat", "current_thread": "t1",
                     "pages_visited": "2"}  # fmt: skip
    assert missing is None
    if isinstance(expired, dict):  # Redis expires by its own clock: see the TTL test below
        assert expired["event_count"] == "6"
    else:
        assert expired is None


def test_hot_prompts(backend_factory: Any) -> None:
    async def scenario(state: LiveState) -> tuple[Any, Any, Any]:
        old = T0 - 40 * 60_000  # older than the 30-minute horizon
        await state.record(_activity(old, prompts=[("h-old", "old question")] * 9))
        await state.record(
            _activity(T0 - 20 * 60_000, prompts=[("h1", "how to cut cost"), ("h2", "why slow")])
        )
        await state.record(
            _activity(T0, prompts=[("h1", "how to cut cost")] * 2 + [("h3", "which model")])
        )
        return (
            await state.hot_prompts(T0, 2),
            await state.hot_prompts(T0, 10),
            await state.recent_prompts(),
        )

    top2, everything, recent = _run(backend_factory, scenario)
    assert top2 == [("h1", "how to cut cost", 3), ("h2", "why slow", 1)]
    assert [h for h, _, _ in everything] == ["h1", "h2", "h3"]
    assert recent[:3] == ["h3", "h1", "h1"]


def test_tag_heartbeats_keep_the_latest_per_container(backend_factory: Any) -> None:
    async def scenario(state: LiveState) -> tuple[Any, Any]:
        before = await state.tag_heartbeats()
        await state.tag_fired("GTM-AAAA1", "1.0.0", T0)
        await state.tag_fired("GTM-BBBB2", "1.0.0", T0 + 5)
        await state.tag_fired("GTM-AAAA1", "1.1.0", T0 + 10)
        return before, await state.tag_heartbeats()

    before, after = _run(backend_factory, scenario)
    assert before == {}
    assert after == {"GTM-AAAA1": (T0 + 10, "1.1.0"), "GTM-BBBB2": (T0 + 5, "1.0.0")}


def test_redis_keys_carry_the_specs_ttls(redis_server: Any, redis_db: Any) -> None:
    async def scenario() -> None:
        state = RedisLiveState(redis_server.url, prefix="ttl:")
        now = int(__import__("time").time() * 1000)
        await state.take("u1", ["e1"], now, 1000)
        await state.record(_activity(now, session="s1", chat=1, thread="t", prompts=[("h", "q")]))
        await state.tag_fired("GTM-TTL1", "1.0.0", now)
        await state.close()

    asyncio.run(scenario())
    ttls = {key: redis_db.ttl(key) for key in redis_db.keys("ttl:*")}
    assert 55 <= ttls["ttl:event_rate_limiter:u1"] <= 60
    assert 3590 <= ttls["ttl:user_session_cache:s1"] <= 3600
    assert 3590 <= ttls["ttl:user_session_cache:s1:pages"] <= 3600
    assert 1790 <= ttls["ttl:hot_prompts_cache"] <= 1800
    assert 30 * 86_400 - 10 <= ttls["ttl:tag_heartbeats"] <= 30 * 86_400
    metrics_keys = [k for k in ttls if k.startswith("ttl:real_time_metrics:")]
    assert len(metrics_keys) == 3  # counters, users, chat sessions
    counters = [k for k in metrics_keys if ":users:" not in k and ":chat_sessions:" not in k]
    assert len(counters) == 1 and 86_390 <= ttls[counters[0]] <= 86_400
    # The distinct-count HyperLogLogs are read over five minutes: they live ten.
    assert all(590 <= ttls[k] <= 600 for k in metrics_keys if k not in counters)
    assert all(ttl > 0 for ttl in ttls.values())  # every key expires
    assert redis_db.type("ttl:event_rate_limiter:u1") == "zset"
    assert redis_db.type("ttl:user_session_cache:s1") == "hash"
    assert redis_db.type("ttl:hot_prompts_cache") == "list"
    assert redis_db.lrange("ttl:hot_prompts_cache", 0, -1) == ["h"]


def test_forget_drops_a_person_and_their_prompts_and_every_cached_report(
    backend_factory: Any,
) -> None:
    """An erasure's part in the live state: nothing of the person is left (Redis: the bytes of
    every key and value are searched), another person's state is untouched."""

    async def scenario(state: LiveState) -> tuple[int, list[str], dict[str, str] | None]:
        for user, session, text in (("gone-7", "s-gone", "quokka tariff"), ("kept", "s-kept", "x")):
            await state.take(user, [f"{user}-e1"], T0, 100)
            await state.record(_activity(T0, user, session, prompts=[(f"h-{user}", text)]))
        await state.cache_put("user-activity:gone-7", b'{"user_id": "gone-7"}', 60)
        removed = await state.forget(["gone-7"], ["h-gone-7"])
        assert await state.session("s-gone", T0) is None
        assert await state.cache_get("user-activity:gone-7") is None
        hot = await state.hot_prompts(T0, 10)
        assert [h for h, _, _ in hot] == ["h-kept"]
        assert "h-gone-7" not in await state.recent_prompts()
        decision = await state.take("gone-7", ["gone-7-e2"], T0, 1)  # a fresh window
        assert decision.allowed == 1
        left: list[str] = []
        if isinstance(state, RedisLiveState):
            client = state._client
            async for key in client.scan_iter(match="test:*"):
                dump = await client.dump(key)
                if b"gone-7" in key.encode() + (dump or b"") or b"quokka" in (dump or b""):
                    left.append(key)
        return removed, left, await state.session("s-kept", T0)

    removed, left, kept = _run(backend_factory, scenario)
    assert removed >= 4  # window, session, the prompt (bucket, recent), the cached report
    # The fresh window taken after the forget is the only key naming the person again.
    assert left in ([], ["test:event_rate_limiter:gone-7"])
    assert kept is not None and kept["user_id"] == "kept"
