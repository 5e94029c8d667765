"""The live-state contract: rate limiting, sessions, real-time metrics and hot prompts.

Two backends keep it: Redis (`REDIS_ANALYTICS_URL`, shared by any number of workers) and an
in-process one (the embedded default). Both store the spec's four structures under the same
names and TTLs:

- `event_rate_limiter:{user}`: sorted set, one member per admitted event id; TTL 60 s.
- `user_session_cache:{session}`: hash (user_id, first_seen, last_seen, event_count,
  current_page, current_thread) and a `:pages` set; TTL 3600 s, refreshed on activity.
- `real_time_metrics:{second}`: hash of counters (COUNTERS and `type:<event_type>`), with
  `real_time_metrics:users:{10 s}` and `real_time_metrics:chat_sessions:{10 s}` HyperLogLogs;
  TTL 86400 s.
- `hot_prompts_cache`: list of recent prompt hashes, with `hot_prompts_cache:counts:{5 min}`
  sorted sets and `hot_prompts_cache:text:{5 min}` hashes of sanitised texts; TTL 1800 s. Each
  bucket counts at most 2 x HOT_PROMPTS_TRACKED distinct prompts (see there), so reading the
  hot prompts costs the same whatever the traffic.

The users and chat-sessions HyperLogLogs of `real_time_metrics` are read over five minutes
only, so they live ACTIVITY_TTL (10 minutes), not a day: a day of 10-second HyperLogLogs of up
to 12 KB each would be ~100 MB of Redis for nothing. Every key has a TTL: nothing outlives its
use, whatever the traffic.

Beside them: `report_cache:{key}` (cached reports) and `tag_heartbeats`, a hash of GTM
container id -> "{epoch ms} {tag version}" of the browser tag's last heartbeat; TTL 30 days.

Time is always passed in (`now_ms`), never read by a backend, so tests drive the clock and
several workers agree on windows as far as their clocks agree.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

RATE_WINDOW_MS = 60_000
RATE_LIMITER_TTL = 60
SESSION_TTL = 3600
METRICS_TTL = 86_400
HOT_PROMPTS_TTL = 1800
HOT_PROMPTS_RECENT = 1000  # length of the recent-prompts list
HOT_BUCKET_SECONDS = 300
# Distinct prompts counted per 5-minute bucket: between this and twice this; when a bucket
# reaches twice, it keeps its most asked half (ANALYTICS_HOT_PROMPTS_TRACKED).
HOT_PROMPTS_TRACKED = 2000
HOT_PROMPTS_MAX_LIMIT = 100  # the most a hot-prompts read may ask for
ACTIVITY_BUCKET_SECONDS = 10  # resolution of the active-user and active-session windows
ENGAGEMENT_WINDOW_SECONDS = 300
TAG_HEARTBEATS_TTL = 30 * 86_400
ACTIVITY_TTL = 600

# Counters kept per second in real_time_metrics.
COUNTERS = ("events", "chat_messages", "ai_response_ms_sum", "ai_response_count", "errors")


@dataclasses.dataclass(frozen=True)
class RateDecision:
    admitted: tuple[bool, ...]  # per asked-for event, in order: may it pass?
    limit: int
    remaining: int  # events the user may still send in the current window
    reset_ms: int  # when the oldest event in the window leaves it (epoch ms)

    @property
    def allowed(self) -> int:
        return sum(self.admitted)

    def retry_after_seconds(self, now_ms: int) -> int:
        return max(1, math.ceil((self.reset_ms - now_ms) / 1000))


@dataclasses.dataclass(frozen=True)
class Activity:
    """What one request's accepted events change in the live state."""

    at_ms: int
    user_id: str
    session_id: str
    page_path: str
    thread_id: str | None  # the chat thread the session is in, if these events name one
    counters: dict[str, float]  # COUNTERS for this request
    by_type: Mapping[str, int]  # accepted events per event type
    prompts: Sequence[tuple[str, str]]  # (prompt hash, sanitised text)


@dataclasses.dataclass(frozen=True)
class Engagement:
    as_of_ms: int
    active_users: int
    active_chat_sessions: int
    avg_ai_response_ms: float | None
    error_rate_percent: float | None
    events_per_second: float
    events_last_5_minutes: int


@dataclasses.dataclass(frozen=True)
class Totals:
    """Sums of the per-second counters over a window, and distinct counts."""

    last_minute_events: float
    window: dict[str, float]
    active_users: int
    active_chat_sessions: int


class LiveState(Protocol):
    async def take(
        self, user_id: str, event_ids: Sequence[str], now_ms: int, limit: int
    ) -> RateDecision:
        """Admit up to `limit` events per user per sliding minute; events, not requests.

        Atomic: concurrent callers (other workers too) never admit more than the limit. An
        event id already admitted in the window (a client retry) passes without counting again.
        """

    async def record(self, activity: Activity) -> None: ...

    def record_nowait(
        self, activity: Activity, on_error: Callable[[Activity, Exception], None]
    ) -> None:
        """`record` without a coroutine (one per request): applied at once, or queued and
        `on_error(activity, error)` called if it then fails. Raises `ConnectionError` when it
        cannot even be queued now (the caller then awaits `record`)."""

    async def totals(self, now_ms: int) -> Totals: ...

    async def session(self, session_id: str, now_ms: int) -> dict[str, str] | None:
        """The session's hash: user_id, first_seen, last_seen (epoch ms), event_count,
        current_page, current_thread, pages_visited; None once it expired."""

    async def recent_prompts(self) -> list[str]:
        """Hashes of the most recent prompts, newest first (the spec's list)."""

    async def hot_prompts(self, now_ms: int, limit: int) -> list[tuple[str, str, int]]:
        """Prompts asked most in the last 30 minutes: (hash, sanitised text, count)."""

    async def cache_get(self, key: str) -> bytes | None:
        """A cached report, if still fresh (`report_cache:{key}`)."""

    async def cache_put(self, key: str, value: bytes, ttl_seconds: int) -> None: ...

    async def forget(self, user_ids: Sequence[str], prompt_hashes: Sequence[str]) -> int:
        """An erasure: drop these people's rate-limit windows and sessions, the prompts they
        asked (by hash) from hot prompts and the recent list, and every cached report (one may
        show a person's activity). The active-user sets of the last minutes keep them in
        Redis (HyperLogLogs cannot drop a member) until their 10-minute TTL; in process they
        are dropped too. Returns how many entries were removed."""

    async def tag_fired(self, container: str, version: str, now_ms: int) -> None:
        """The browser tag of this GTM container ran (its heartbeat)."""

    async def tag_heartbeats(self) -> dict[str, tuple[int, str]]:
        """Per GTM container: (epoch ms of the last heartbeat, tag version)."""

    async def ping(self) -> None: ...

    async def used_memory(self) -> int | None:
        """Bytes the backing server uses (Redis's `used_memory`); None in process."""
        return None

    async def close(self) -> None: ...


def engagement(totals: Totals, now_ms: int) -> Engagement:
    """The dashboard's numbers from the live totals (pure, shared by both backends).

    - active users / active chat sessions: distinct users (sessions with a chat message) in the
      last five minutes, counted in 10-second buckets;
    - average AI response time: mean `response_time_ms` of chat events in the last five minutes;
    - error rate: errors (error_tracking events, and failed performance_metric and
      feature_usage events) as a percentage of all events in the last five minutes;
    - events per second: events of the last 60 seconds divided by 60.
    """
    window = totals.window
    events = window.get("events", 0.0)
    ai_count = window.get("ai_response_count", 0.0)
    return Engagement(
        as_of_ms=now_ms,
        active_users=totals.active_users,
        active_chat_sessions=totals.active_chat_sessions,
        avg_ai_response_ms=window["ai_response_ms_sum"] / ai_count if ai_count else None,
        error_rate_percent=100 * window.get("errors", 0.0) / events if events else None,
        events_per_second=totals.last_minute_events / 60,
        events_last_5_minutes=int(events),
    )


def window_seconds(now_ms: int, span: int) -> range:
    """The `span` whole seconds ending with the current one."""
    now_s = now_ms // 1000
    return range(now_s - span + 1, now_s + 1)


def activity_buckets(now_ms: int) -> range:
    """The 10-second buckets that cover the last five minutes."""
    now_bucket = now_ms // 1000 // ACTIVITY_BUCKET_SECONDS
    first = (now_ms // 1000 - ENGAGEMENT_WINDOW_SECONDS + 1) // ACTIVITY_BUCKET_SECONDS
    return range(first, now_bucket + 1)


def hot_buckets(now_ms: int) -> range:
    """The 5-minute buckets that cover the hot-prompts TTL (30 minutes)."""
    now_bucket = now_ms // 1000 // HOT_BUCKET_SECONDS
    return range(now_bucket - HOT_PROMPTS_TTL // HOT_BUCKET_SECONDS + 1, now_bucket + 1)
