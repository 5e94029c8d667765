"""Live state: rate limits, sessions, real-time metrics and hot prompts (see `base.py`).

`LiveStateGuard` is what the service uses. Without `REDIS_ANALYTICS_URL` it is the in-process
backend, or, in a worker process of several (`ANALYTICS_WORKERS` > 1), the engine owner's
in-process backend over a Unix socket (`remote.py`). With Redis (or the owner) it uses that
shared state, and when it fails (a timeout, a refused connection) it
never fails a request: rate limits fall back to this process's own limiter, live updates go to
the in-process state, reads are answered from it, the outage is logged once and counted in
metrics, and Redis is tried again a second later, and used again as soon as it answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from netra_analytics import metrics
from netra_analytics.config import Settings
from netra_analytics.live.base import Activity, LiveState, RateDecision, Totals
from netra_analytics.live.cache import LARGEST_SHARE
from netra_analytics.live.memory import InProcessLiveState

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_AFTER_FAILURE = 1.0  # seconds before Redis is tried again


class LiveStateGuard:
    def __init__(
        self,
        primary: LiveState | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        local: InProcessLiveState | None = None,
        name: str = "redis",
    ) -> None:
        """`name`: what the shared state is called in health and reports (`redis`, `owner`)."""
        self.primary = primary
        self.name = name
        self.local = local if local is not None else InProcessLiveState()
        self._clock = clock
        self._down_since: float | None = None
        self._retry_at = 0.0
        self.last_error: str | None = None

    @property
    def degraded(self) -> bool:
        return self._down_since is not None

    async def _use(
        self, call: Callable[[LiveState], Awaitable[T]], *, counter: str
    ) -> tuple[T, bool]:
        """Run `call` on Redis if it is usable, else on the local state; (result, on Redis?)."""
        if self.primary is not None and self._clock() >= self._retry_at:
            try:
                result = await call(self.primary)
            except Exception as exc:  # any Redis trouble: connection, timeout, script error
                self._failed(exc)
                metrics.LIVE_STATE_FALLBACKS.labels(counter).inc()
            else:
                self._recovered()
                return result, True
        elif self.primary is not None:
            metrics.LIVE_STATE_FALLBACKS.labels(counter).inc()
        return await call(self.local), False

    def _failed(self, exc: Exception) -> None:
        self._retry_at = self._clock() + RETRY_AFTER_FAILURE
        self.last_error = str(exc) or type(exc).__name__
        if self._down_since is None:
            self._down_since = self._clock()
            log.warning(
                "%s unavailable: rate limits are per process and live state is local "
                "until it answers again", self._label,
                extra={"error": self.last_error},
            )  # fmt: skip

    def _recovered(self) -> None:
        if self._down_since is not None:
            # What the outage left in process is Redis's job again: free it now rather than
            # keep it until the next outage.
            self.local.clear()
            log.info(
                "%s answers again",
                self._label,
                extra={"down_seconds": round(self._clock() - self._down_since, 1)},
            )
            self._down_since = None
            self.last_error = None

    @property
    def _label(self) -> str:
        return "Redis" if self.name == "redis" else "the engine owner's live state"

    def record_nowait(self, activity: Activity) -> bool:
        """`record` done or queued at once, without a coroutine (one per request): on the
        in-process state, on Redis's next batch, or on the engine owner's open connection.
        False when it was not (an outage, or no connection to the owner yet): the caller then
        awaits `record`. A queued update whose batch fails goes to the in-process state."""
        primary = self.primary
        if primary is None:
            self.local.record_now(activity)
            return True
        if self._down_since is not None:
            return False
        try:
            primary.record_nowait(activity, self._record_failed)
        except ConnectionError:
            return False
        return True

    def _record_failed(self, activity: Activity, error: Exception) -> None:
        """What `record` does when the shared state fails it (a queued update's batch)."""
        self._failed(error)
        metrics.LIVE_STATE_FALLBACKS.labels("record").inc()
        self.local.record_now(activity)

    async def take(
        self, user_id: str, event_ids: Sequence[str], now_ms: int, limit: int
    ) -> RateDecision:
        decision, _ = await self._use(
            lambda s: s.take(user_id, event_ids, now_ms, limit), counter="take"
        )
        return decision

    async def record(self, activity: Activity) -> None:
        await self._use(lambda s: s.record(activity), counter="record")

    async def totals(self, now_ms: int) -> tuple[Totals, str]:
        totals, on_redis = await self._use(lambda s: s.totals(now_ms), counter="read")
        return totals, self.name if on_redis else (
            "in-process" if self.primary is None else f"in-process ({self._label} unavailable)"
        )

    async def session(self, session_id: str, now_ms: int) -> dict[str, str] | None:
        found, _ = await self._use(lambda s: s.session(session_id, now_ms), counter="read")
        return found

    async def hot_prompts(self, now_ms: int, limit: int) -> list[tuple[str, str, int]]:
        hot, _ = await self._use(lambda s: s.hot_prompts(now_ms, limit), counter="read")
        return hot

    async def cache_get(self, key: str) -> bytes | None:
        found, _ = await self._use(lambda s: s.cache_get(key), counter="read")
        return found

    async def cache_put(self, key: str, value: bytes, ttl_seconds: int) -> None:
        await self._use(lambda s: s.cache_put(key, value, ttl_seconds), counter="record")

    async def forget(self, user_ids: Sequence[str], prompt_hashes: Sequence[str]) -> int:
        """Both the shared state and this process's fallback (it may hold what an outage of
        Redis left): see LiveState.forget. Raises when Redis cannot be reached."""
        removed = await self.local.forget(user_ids, prompt_hashes)
        if self.primary is not None:
            removed += await self.primary.forget(user_ids, prompt_hashes)
        return removed

    async def tag_fired(self, container: str, version: str, now_ms: int) -> None:
        await self._use(lambda s: s.tag_fired(container, version, now_ms), counter="record")

    async def tag_heartbeats(self) -> dict[str, tuple[int, str]]:
        found, _ = await self._use(lambda s: s.tag_heartbeats(), counter="read")
        return found

    async def ping(self) -> None:
        if self.primary is not None:
            await self.primary.ping()

    async def used_memory(self) -> int | None:
        """Redis's `used_memory` in bytes; None without Redis (raises its errors)."""
        return None if self.primary is None else await self.primary.used_memory()

    async def close(self) -> None:
        if self.primary is not None:
            await self.primary.close()


def open_live_state(settings: Settings) -> LiveStateGuard:
    local = InProcessLiveState(
        hot_prompts_tracked=settings.hot_prompts_tracked,
        cache_max_bytes=settings.report_cache_max_bytes,
    )
    if settings.redis_url is None and settings.live_socket is not None:
        from netra_analytics.live.remote import RemoteLiveState

        return LiveStateGuard(RemoteLiveState(settings.live_socket), local=local, name="owner")
    if settings.redis_url is None:
        return LiveStateGuard(None, local=local)
    from netra_analytics.live.redis_backend import RedisLiveState

    primary = RedisLiveState(
        settings.redis_url,
        prefix=settings.redis_key_prefix,
        hot_prompts_tracked=settings.hot_prompts_tracked,
        cache_max_value_bytes=settings.report_cache_max_bytes // LARGEST_SHARE,
    )
    return LiveStateGuard(primary, local=local)
