"""The live state in this process: the embedded default, and the fallback when Redis is down.

Same contract and TTLs as the Redis backend; distinct counts are exact here (sets), where Redis
uses HyperLogLogs. Runs on the event loop's thread only, so it needs no locks.

Memory is bounded by time and by size, and sweeping it costs amortised O(1) per request:

- rate-limit windows and sessions sit in insertion-ordered dicts, moved to the end when
  touched, so the least recently used is always first; every `take` and `record` frees up to
  SWEEP_STEP expired ones from the front (each entry is freed once, so the sweep keeps pace
  with any rate of new users: at most one entry is added per call);
- per-second counters and 10-second user sets are dropped once older than their window
  (ten minutes: they are read over five);
- hot prompts are counted per 5-minute bucket, at most 2 x `hot_prompts_tracked` distinct
  ones per bucket (a full bucket keeps its most asked half), with a running total over the
  window, so a read ranks a bounded number of prompts, off the event loop (see `hot_prompts`);
- the report cache is bounded in bytes and swept on every request (`live/cache.py`).
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Final

import anyio
import anyio.to_thread

from netra_analytics.live.base import (
    ACTIVITY_BUCKET_SECONDS,
    ACTIVITY_TTL,
    COUNTERS,
    ENGAGEMENT_WINDOW_SECONDS,
    HOT_BUCKET_SECONDS,
    HOT_PROMPTS_MAX_LIMIT,
    HOT_PROMPTS_RECENT,
    HOT_PROMPTS_TRACKED,
    RATE_WINDOW_MS,
    SESSION_TTL,
    Activity,
    RateDecision,
    Totals,
    activity_buckets,
    hot_buckets,
    window_seconds,
)
from netra_analytics.live.cache import DEFAULT_MAX_BYTES, ReportCache

SWEEP_STEP = 64  # expired windows or sessions freed per call, at most
# Per-second counters are read over the last five minutes only (`totals`): Redis keeps them
# the spec's day for whoever else reads them, this process keeps what it reads.
SECONDS_KEPT = ACTIVITY_TTL


# A user's rate window and a live session are tuples of atomic values (and of such tuples):
# the collector stops tracking such tuples once it has seen them, so a full collection
# skips the windows of every active user and the sessions of the last hour, where objects
# (lists, sets, dataclasses) were walked on each one: a 75 ms pause of the owner's loop, which
# answers every worker's rate-limit call, with 20 s of realistic traffic held (and growing).
# (admission times ascending, the event ids admitted in the same order)
_Window = tuple[tuple[int, ...], tuple[str, ...]]
# (first seen ms, events, user id, last seen ms, current page, current thread, pages visited,
# expiry ms); "" for a page or thread not seen yet.
_Session = tuple[int, int, str, int, str, str, tuple[str, ...], int]
_EXPIRES: Final = 7


def _rank(items: list[tuple[str, int]], limit: int) -> list[tuple[str, int]]:
    """The `limit` most asked, ties by hash (pure, for a worker thread)."""
    return heapq.nsmallest(limit, items, key=lambda item: (-item[1], item[0]))


class InProcessLiveState:
    def __init__(
        self,
        *,
        hot_prompts_tracked: int = HOT_PROMPTS_TRACKED,
        cache_max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock`: seconds, for the report cache's expiry (the rest takes `now_ms`)."""
        self._hot_tracked = hot_prompts_tracked
        self._cache_max_bytes = cache_max_bytes
        self._clock = clock
        # Its own limiter (one thread): rankings never queue behind, or fill, the default pool.
        self._ranking_limiter: anyio.CapacityLimiter | None = None
        self.clear()

    def clear(self) -> None:
        """Forget everything (the fallback state, once Redis answers again)."""
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self._seconds: dict[int, dict[str, float]] = {}
        self._users: dict[int, set[str]] = {}
        self._chat_sessions: dict[int, set[str]] = {}
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._recent_prompts: deque[str] = deque(maxlen=HOT_PROMPTS_RECENT)
        self._hot_counts: dict[int, Counter[str]] = {}
        self._hot_total: Counter[str] = Counter()  # the sum of the buckets in _hot_counts
        self._hot_text: dict[str, str] = {}  # for each prompt in _hot_total
        # Changes whenever _hot_total does; never goes back, so a ranking from before a clear
        # cannot pass for a current one.
        self._hot_version = getattr(self, "_hot_version", 0) + 1
        self._ranked: tuple[int, list[tuple[str, int]]] = (-1, [])  # (version, top prompts)
        self._ranking: asyncio.Future[list[tuple[str, int]]] | None = None
        self._last_prune_s = 0
        self.cache = ReportCache(self._cache_max_bytes, clock=self._clock)
        self._tags: dict[str, tuple[int, str]] = {}

    async def forget(self, user_ids: Sequence[str], prompt_hashes: Sequence[str]) -> int:
        ids, digests = set(user_ids), set(prompt_hashes)
        removed = sum(self._windows.pop(user, None) is not None for user in ids)
        gone = [key for key, session in self._sessions.items()
                if session[2] in ids]  # fmt: skip
        for key in gone:
            del self._sessions[key]
        removed += len(gone)
        for users in self._users.values():
            removed += len(users & ids)
            users -= ids
        for bucket, hot in list(self._hot_counts.items()):
            asked = {digest: hot[digest] for digest in digests if digest in hot}
            if asked:
                self._forget(bucket, asked)
                removed += len(asked)
        kept = [digest for digest in self._recent_prompts if digest not in digests]
        removed += len(self._recent_prompts) - len(kept)
        self._recent_prompts = deque(kept, maxlen=HOT_PROMPTS_RECENT)
        removed += len(self.cache)
        self.cache = ReportCache(self._cache_max_bytes, clock=self._clock)
        return removed

    def sizes(self) -> dict[str, int]:
        """How many entries each structure holds (for tests and the soak benchmark)."""
        return {
            "windows": len(self._windows),
            "sessions": len(self._sessions),
            "seconds": len(self._seconds),
            "hot_prompts": len(self._hot_total),
            "cache_entries": len(self.cache),
            "cache_bytes": self.cache.bytes,
        }

    async def take(
        self, user_id: str, event_ids: Sequence[str], now_ms: int, limit: int
    ) -> RateDecision:
        return self.take_now(user_id, event_ids, now_ms, limit)

    def take_now(
        self, user_id: str, event_ids: Sequence[str], now_ms: int, limit: int
    ) -> RateDecision:
        """`take` without a coroutine: the engine owner answers it as its frame arrives."""
        scores, members = self._windows.pop(user_id, ((), ()))
        cut = bisect.bisect_right(scores, now_ms - RATE_WINDOW_MS)
        if cut:
            scores, members = scores[cut:], members[cut:]
        ids = set(members)
        added: list[str] = []
        admitted = []
        for event_id in event_ids:
            if event_id in ids:
                admitted.append(True)
            elif len(ids) < limit:
                ids.add(event_id)
                added.append(event_id)
                admitted.append(True)
            else:
                admitted.append(False)
        if added:  # callers' clocks only move forward: the times stay ascending
            scores, members = scores + (now_ms,) * len(added), members + tuple(added)
        reset = (scores[0] if scores else now_ms) + RATE_WINDOW_MS
        if members:
            self._windows[user_id] = (scores, members)  # at the end: the most recently used
        self._sweep_windows(now_ms)
        self.cache.sweep()
        return RateDecision(tuple(admitted), limit, max(0, limit - len(ids)), reset)

    def _sweep_windows(self, now_ms: int) -> None:
        for _ in range(SWEEP_STEP):
            oldest = next(iter(self._windows.values()), None)
            if oldest is None or oldest[0][-1] > now_ms - RATE_WINDOW_MS:
                return
            self._windows.popitem(last=False)

    def _sweep_sessions(self, now_ms: int) -> None:
        for _ in range(SWEEP_STEP):
            oldest = next(iter(self._sessions.values()), None)
            if oldest is None or oldest[_EXPIRES] > now_ms:
                return
            self._sessions.popitem(last=False)

    async def record(self, activity: Activity) -> None:
        self.record_now(activity)

    def record_nowait(
        self, activity: Activity, on_error: Callable[[Activity, Exception], None]
    ) -> None:
        self.record_now(activity)

    def record_now(self, activity: Activity) -> None:
        """`record` without a coroutine (as `take_now`)."""
        second = activity.at_ms // 1000
        self._prune(second)
        counters = self._seconds.setdefault(second, {})
        for name, value in activity.counters.items():
            counters[name] = counters.get(name, 0.0) + value
        for event_type, count in activity.by_type.items():
            key = f"type:{event_type}"
            counters[key] = counters.get(key, 0.0) + count
        bucket = second // ACTIVITY_BUCKET_SECONDS
        self._users.setdefault(bucket, set()).add(activity.user_id)
        if activity.counters.get("chat_messages"):
            self._chat_sessions.setdefault(bucket, set()).add(activity.session_id)
        self._record_session(activity)
        self._sweep_sessions(activity.at_ms)
        if activity.prompts:
            self._count_prompts(second // HOT_BUCKET_SECONDS, activity.prompts)

    def _count_prompts(self, bucket: int, prompts: Sequence[tuple[str, str]]) -> None:
        hot = self._hot_counts.setdefault(bucket, Counter())
        for digest, text in prompts:
            self._recent_prompts.appendleft(digest)
            hot[digest] += 1
            self._hot_total[digest] += 1
            self._hot_text[digest] = text
        self._hot_version += 1
        if len(hot) >= 2 * self._hot_tracked:
            # Keep the most asked half: O(n log n) once per n new prompts, amortised O(log n).
            # Least asked first, ties by hash: the order of a Redis sorted set, so that both
            # backends keep the same prompts.
            ranked = sorted(hot.items(), key=lambda item: (item[1], item[0]))
            self._forget(bucket, dict(ranked[: len(hot) - self._hot_tracked]))

    def _forget(self, bucket: int, counts: dict[str, int]) -> None:
        """Take `counts` out of the bucket and the running total."""
        hot = self._hot_counts.get(bucket)
        for digest, count in counts.items():
            if hot is not None:
                del hot[digest]
            left = self._hot_total[digest] - count
            if left > 0:
                self._hot_total[digest] = left
            else:
                del self._hot_total[digest]
                self._hot_text.pop(digest, None)
        self._hot_version += 1

    def _record_session(self, activity: Activity) -> None:
        a = activity
        found = self._sessions.pop(a.session_id, None)
        if found is None or found[_EXPIRES] <= a.at_ms:
            found = (a.at_ms, 0, "", 0, "", "", (), 0)
        first_seen, events, _, _, page, thread, pages, _ = found
        if a.page_path:
            page = a.page_path
            if page not in pages:
                pages = (*pages, page)
        # At the end: the most recently used.
        self._sessions[a.session_id] = (
            first_seen, events + int(a.counters["events"]), a.user_id, a.at_ms,
            page, a.thread_id or thread, pages, a.at_ms + SESSION_TTL * 1000,
        )  # fmt: skip

    def _prune(self, now_s: int) -> None:
        """Drop what is older than its window (every 10 s: the tables are keyed by time, so
        this touches a few dozen keys, not one per user)."""
        self._expire_hot(now_s)
        if now_s - self._last_prune_s < 10:
            return
        self._last_prune_s = now_s
        oldest_activity = min(activity_buckets(now_s * 1000))
        for table, oldest in (
            (self._seconds, now_s - SECONDS_KEPT),
            (self._users, oldest_activity),
            (self._chat_sessions, oldest_activity),
        ):
            for key in [k for k in table if k < oldest]:
                del table[key]

    def _expire_hot(self, now_s: int) -> None:
        oldest = min(hot_buckets(now_s * 1000))
        for bucket in [b for b in self._hot_counts if b < oldest]:
            self._forget(bucket, self._hot_counts.pop(bucket))

    async def totals(self, now_ms: int) -> Totals:
        window = dict.fromkeys(COUNTERS, 0.0)
        for second in window_seconds(now_ms, ENGAGEMENT_WINDOW_SECONDS):
            counters = self._seconds.get(second, {})
            for name in COUNTERS:
                window[name] += counters.get(name, 0.0)
        last_minute = sum(
            self._seconds.get(second, {}).get("events", 0.0)
            for second in window_seconds(now_ms, 60)
        )
        buckets = activity_buckets(now_ms)
        users = set().union(*(self._users.get(b, set()) for b in buckets))
        chats = set().union(*(self._chat_sessions.get(b, set()) for b in buckets))
        return Totals(last_minute, window, len(users), len(chats))

    async def session(self, session_id: str, now_ms: int) -> dict[str, str] | None:
        session = self._sessions.get(session_id)
        if session is None or session[_EXPIRES] <= now_ms:
            return None
        first_seen, events, user_id, last_seen, page, thread, pages, _ = session
        fields = {"first_seen": str(first_seen), "event_count": str(events),
                  "user_id": user_id, "last_seen": str(last_seen)}  # fmt: skip
        if page:
            fields["current_page"] = page
        if thread:
            fields["current_thread"] = thread
        return {**fields, "pages_visited": str(len(pages))}

    async def hot_prompts(self, now_ms: int, limit: int) -> list[tuple[str, str, int]]:
        """The running total holds at most 2 x tracked x 6 buckets prompts. Ranking them is
        done in a worker thread on a copy (taking the copy is one C-level pass), one ranking at
        a time: readers that come while one runs share it, and an unchanged state is not
        ranked again. So a burst of reads costs the event loop a copy, not a sort each."""
        self._expire_hot(now_ms // 1000)
        version, ranked = self._ranked
        if version != self._hot_version:
            if self._ranking is None:
                self._ranking = asyncio.ensure_future(self._rank_now())
            ranking = self._ranking
            ranked = await asyncio.shield(ranking)
        return [(digest, self._hot_text.get(digest, ""), count) for digest, count in ranked][:limit]

    async def _rank_now(self) -> list[tuple[str, int]]:
        version = self._hot_version
        items = list(self._hot_total.items())
        if self._ranking_limiter is None:
            self._ranking_limiter = anyio.CapacityLimiter(1)  # made inside the running loop
        try:
            ranked = await anyio.to_thread.run_sync(
                _rank, items, HOT_PROMPTS_MAX_LIMIT, limiter=self._ranking_limiter
            )
        finally:
            self._ranking = None
        self._ranked = (version, ranked)
        return ranked

    async def recent_prompts(self) -> list[str]:
        return list(self._recent_prompts)

    async def cache_get(self, key: str) -> bytes | None:
        return self.cache.get(key)

    async def cache_put(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self.cache.put(key, value, ttl_seconds)

    async def tag_fired(self, container: str, version: str, now_ms: int) -> None:
        self._tags[container] = (now_ms, version)

    async def tag_heartbeats(self) -> dict[str, tuple[int, str]]:
        return dict(self._tags)

    async def ping(self) -> None:
        return None

    async def used_memory(self) -> int | None:
        return None

    async def close(self) -> None:
        return None
