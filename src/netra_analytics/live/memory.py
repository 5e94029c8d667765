"""The live state in this process: the embedded default, and the fallback when Redis is down.

Same contract and TTLs as the Redis backend; distinct counts are exact here (sets), where Redis
uses HyperLogLogs. Runs on the event loop's thread only, so it needs no locks; expired entries
are dropped as time passes (on writes).
"""

from __future__ import annotations

import bisect
import dataclasses
import time
from collections import Counter, deque
from collections.abc import Sequence

from netra_analytics.live.base import (
    ACTIVITY_BUCKET_SECONDS,
    COUNTERS,
    ENGAGEMENT_WINDOW_SECONDS,
    HOT_BUCKET_SECONDS,
    HOT_PROMPTS_RECENT,
    METRICS_TTL,
    RATE_WINDOW_MS,
    SESSION_TTL,
    Activity,
    RateDecision,
    Totals,
    activity_buckets,
    hot_buckets,
    window_seconds,
)


@dataclasses.dataclass
class _Window:
    scores: list[int] = dataclasses.field(default_factory=list)  # admission times, ascending
    members: list[str] = dataclasses.field(default_factory=list)
    ids: set[str] = dataclasses.field(default_factory=set)

    def expire(self, before_or_at: int) -> None:
        cut = bisect.bisect_right(self.scores, before_or_at)
        if cut:
            self.ids.difference_update(self.members[:cut])
            del self.scores[:cut], self.members[:cut]


@dataclasses.dataclass
class _Session:
    fields: dict[str, str]
    pages: set[str]
    expires_ms: int


class InProcessLiveState:
    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}
        self._seconds: dict[int, dict[str, float]] = {}
        self._users: dict[int, set[str]] = {}
        self._chat_sessions: dict[int, set[str]] = {}
        self._sessions: dict[str, _Session] = {}
        self._recent_prompts: deque[str] = deque(maxlen=HOT_PROMPTS_RECENT)
        self._hot_counts: dict[int, Counter[str]] = {}
        self._hot_text: dict[str, str] = {}
        self._last_prune_s = 0
        self._cache: dict[str, tuple[float, bytes]] = {}
        self._tags: dict[str, tuple[int, str]] = {}

    async def take(
        self, user_id: str, event_ids: Sequence[str], now_ms: int, limit: int
    ) -> RateDecision:
        window = self._windows.setdefault(user_id, _Window())
        window.expire(now_ms - RATE_WINDOW_MS)
        admitted = []
        for event_id in event_ids:
            if event_id in window.ids:
                admitted.append(True)
            elif len(window.ids) < limit:
                window.scores.append(now_ms)  # callers' clocks only move forward
                window.members.append(event_id)
                window.ids.add(event_id)
                admitted.append(True)
            else:
                admitted.append(False)
        reset = (window.scores[0] if window.scores else now_ms) + RATE_WINDOW_MS
        if not window.ids:
            del self._windows[user_id]
        return RateDecision(tuple(admitted), limit, max(0, limit - len(window.ids)), reset)

    async def record(self, activity: Activity) -> None:
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
        hot = self._hot_counts.setdefault(second // HOT_BUCKET_SECONDS, Counter())
        for digest, text in activity.prompts:
            self._recent_prompts.appendleft(digest)
            hot[digest] += 1
            self._hot_text[digest] = text

    def _record_session(self, activity: Activity) -> None:
        session = self._sessions.get(activity.session_id)
        if session is None or session.expires_ms <= activity.at_ms:
            session = _Session({"first_seen": str(activity.at_ms), "event_count": "0"}, set(), 0)
            self._sessions[activity.session_id] = session
        fields = session.fields
        fields["user_id"] = activity.user_id
        fields["last_seen"] = str(activity.at_ms)
        fields["event_count"] = str(int(fields["event_count"]) + int(activity.counters["events"]))
        if activity.page_path:
            fields["current_page"] = activity.page_path
            session.pages.add(activity.page_path)
        if activity.thread_id:
            fields["current_thread"] = activity.thread_id
        session.expires_ms = activity.at_ms + SESSION_TTL * 1000

    def _prune(self, now_s: int) -> None:
        if now_s - self._last_prune_s < 10:
            return
        self._last_prune_s = now_s
        oldest_activity = min(activity_buckets(now_s * 1000))
        oldest_hot = min(hot_buckets(now_s * 1000))
        for table, oldest in (
            (self._seconds, now_s - METRICS_TTL),
            (self._users, oldest_activity),
            (self._chat_sessions, oldest_activity),
            (self._hot_counts, oldest_hot),
        ):
            for key in [k for k in table if k < oldest]:
                del table[key]
        kept = {digest for counts in self._hot_counts.values() for digest in counts}
        self._hot_text = {d: t for d, t in self._hot_text.items() if d in kept}
        self._sessions = {k: s for k, s in self._sessions.items() if s.expires_ms > now_s * 1000}

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
        if session is None or session.expires_ms <= now_ms:
            return None
        return {**session.fields, "pages_visited": str(len(session.pages))}

    async def hot_prompts(self, now_ms: int, limit: int) -> list[tuple[str, str, int]]:
        counts: Counter[str] = Counter()
        for bucket in hot_buckets(now_ms):
            counts.update(self._hot_counts.get(bucket, Counter()))
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [(digest, self._hot_text.get(digest, ""), count) for digest, count in ranked]

    async def recent_prompts(self) -> list[str]:
        return list(self._recent_prompts)

    async def cache_get(self, key: str) -> bytes | None:
        found = self._cache.get(key)
        if found is None or found[0] <= time.monotonic():
            self._cache.pop(key, None)
            return None
        return found[1]

    async def cache_put(self, key: str, value: bytes, ttl_seconds: int) -> None:
        now = time.monotonic()
        if len(self._cache) > 1000:  # keep it small: drop what has expired
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        self._cache[key] = (now + ttl_seconds, value)

    async def tag_fired(self, container: str, version: str, now_ms: int) -> None:
        self._tags[container] = (now_ms, version)

    async def tag_heartbeats(self) -> dict[str, tuple[int, str]]:
        return dict(self._tags)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
