"""The live state on Redis (redis-py asyncio with hiredis), shared by every worker.

Each operation is one round trip: rate limiting and recording are Lua scripts (atomic, and
cheap for the client: one command instead of a pipeline of twenty), reads are one pipeline.
Key layout and TTLs: see `live/base.py`. All keys of a script are passed in KEYS; on a Redis
Cluster they would also need a common hash tag, which this layout does not give.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from netra_analytics.live.base import (
    ACTIVITY_BUCKET_SECONDS,
    ACTIVITY_TTL,
    COUNTERS,
    ENGAGEMENT_WINDOW_SECONDS,
    HOT_BUCKET_SECONDS,
    HOT_PROMPTS_RECENT,
    HOT_PROMPTS_TRACKED,
    HOT_PROMPTS_TTL,
    METRICS_TTL,
    RATE_LIMITER_TTL,
    RATE_WINDOW_MS,
    SESSION_TTL,
    TAG_HEARTBEATS_TTL,
    Activity,
    RateDecision,
    Totals,
    activity_buckets,
    hot_buckets,
    window_seconds,
)

# KEYS[1] the user's window. ARGV: now_ms, window_ms, limit, ttl_ms, event ids...
# Returns the admitted flags ("1"/"0" per id), the count in the window, and when it resets.
TAKE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local flags = {}
local add = {}
for i = 5, #ARGV do
  if redis.call('ZSCORE', key, ARGV[i]) then
    flags[#flags + 1] = '1'
  elseif count < limit then
    count = count + 1
    add[#add + 1] = now
    add[#add + 1] = ARGV[i]
    flags[#flags + 1] = '1'
  else
    flags[#flags + 1] = '0'
  end
end
if #add > 0 then
  redis.call('ZADD', key, unpack(add))
end
local reset = now + window
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
if oldest[2] then
  reset = tonumber(oldest[2]) + window
  redis.call('PEXPIRE', key, ARGV[4])
end
return {table.concat(flags), count, reset}
"""

# KEYS: second counters, users HLL, chat-sessions HLL, session hash, session pages set,
#       recent prompts list, prompt counts (5-minute bucket), prompt texts (same bucket).
# ARGV: user, session, page, thread, at_ms, has_chat, n counter pairs, ttls (metrics, session,
#       hot, recent length, activity), tracked prompts per bucket, then n (field, increment)
#       pairs, then (hash, text) prompt pairs.
# A bucket that reaches twice the tracked number keeps its most asked half (and their texts):
# one trim per `tracked` new prompts, so amortised O(log n) per prompt.
RECORD = """
local user, session, page, thread, at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local has_chat = ARGV[6] == '1'
local n = tonumber(ARGV[7])
local ttl_metrics, ttl_session, ttl_hot = ARGV[8], ARGV[9], ARGV[10]
local recent_length = tonumber(ARGV[11])
local ttl_activity = ARGV[12]
local tracked = tonumber(ARGV[13])
local events = 0
for i = 0, n - 1 do
  local field, value = ARGV[14 + 2 * i], ARGV[15 + 2 * i]
  redis.call('HINCRBYFLOAT', KEYS[1], field, value)
  if field == 'events' then events = tonumber(value) end
end
redis.call('EXPIRE', KEYS[1], ttl_metrics)
redis.call('PFADD', KEYS[2], user)
redis.call('EXPIRE', KEYS[2], ttl_activity)
if has_chat then
  redis.call('PFADD', KEYS[3], session)
  redis.call('EXPIRE', KEYS[3], ttl_activity)
end
redis.call('HSETNX', KEYS[4], 'first_seen', at)
redis.call('HSET', KEYS[4], 'user_id', user, 'last_seen', at)
redis.call('HINCRBY', KEYS[4], 'event_count', events)
if page ~= '' then
  redis.call('HSET', KEYS[4], 'current_page', page)
  redis.call('SADD', KEYS[5], page)
  redis.call('EXPIRE', KEYS[5], ttl_session)
end
if thread ~= '' then
  redis.call('HSET', KEYS[4], 'current_thread', thread)
end
redis.call('EXPIRE', KEYS[4], ttl_session)
local first_prompt = 14 + 2 * n
if #ARGV >= first_prompt then
  for i = first_prompt, #ARGV, 2 do
    redis.call('LPUSH', KEYS[6], ARGV[i])
    redis.call('ZINCRBY', KEYS[7], 1, ARGV[i])
    redis.call('HSET', KEYS[8], ARGV[i], ARGV[i + 1])
  end
  local size = redis.call('ZCARD', KEYS[7])
  if size >= 2 * tracked then
    local dropped = redis.call('ZRANGE', KEYS[7], 0, size - tracked - 1)
    redis.call('ZREMRANGEBYRANK', KEYS[7], 0, size - tracked - 1)
    for j = 1, #dropped, 1000 do
      redis.call('HDEL', KEYS[8], unpack(dropped, j, math.min(j + 999, #dropped)))
    end
  end
  redis.call('LTRIM', KEYS[6], 0, recent_length - 1)
  redis.call('EXPIRE', KEYS[6], ttl_hot)
  redis.call('EXPIRE', KEYS[7], ttl_hot)
  redis.call('EXPIRE', KEYS[8], ttl_hot)
end
return 1
"""

# KEYS[1] a scratch key for the union, KEYS[2..k+1] prompt count buckets, KEYS[k+2..] their
# texts, newest first. ARGV[1] how many. Ranks by count, ties by hash, like the in-process
# state; each bucket holds at most 2 x tracked prompts, so the union is bounded.
HOT = """
local k = (#KEYS - 1) / 2
local limit = tonumber(ARGV[1])
local buckets = {}
for i = 2, k + 1 do buckets[#buckets + 1] = KEYS[i] end
redis.call('ZUNIONSTORE', KEYS[1], #buckets, unpack(buckets))
local out = {}
local last = redis.call('ZREVRANGE', KEYS[1], limit - 1, limit - 1, 'WITHSCORES')
local items = {}
local floor = '-inf'
if last[2] then
  floor = last[2]
  local above = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. floor, '+inf', 'WITHSCORES')
  for j = 1, #above, 2 do items[#items + 1] = {above[j], tonumber(above[j + 1])} end
  table.sort(items, function(a, b) return a[2] > b[2] or (a[2] == b[2] and a[1] < b[1]) end)
  local ties = redis.call('ZRANGEBYSCORE', KEYS[1], floor, floor, 'LIMIT', 0, limit - #items)
  for j = 1, #ties do items[#items + 1] = {ties[j], tonumber(floor)} end
else
  local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for j = 1, #all, 2 do items[#items + 1] = {all[j], tonumber(all[j + 1])} end
  table.sort(items, function(a, b) return a[2] > b[2] or (a[2] == b[2] and a[1] < b[1]) end)
end
redis.call('DEL', KEYS[1])
for _, item in ipairs(items) do
  local text = false
  for i = k + 2, #KEYS do
    text = redis.call('HGET', KEYS[i], item[1])
    if text then break end
  end
  out[#out + 1] = item[1]
  out[#out + 1] = text or ''
  out[#out + 1] = item[2]
end
return out
"""


class RedisLiveState:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "netra:",
        timeout: float = 0.5,
        connections: int = 64,
        pool_wait: float = 2.0,
        hot_prompts_tracked: int = HOT_PROMPTS_TRACKED,
        cache_max_value_bytes: int = 8 << 20,
    ) -> None:
        """`cache_max_value_bytes`: larger reports are not cached (Redis's own `maxmemory`
        bounds the rest; every cached report has its TTL)."""
        # A blocking pool: under a burst, callers wait (up to `pool_wait`) for one of a bounded
        # number of connections instead of failing with "Too many connections"; `timeout`
        # bounds each connect and each reply, so a dead Redis is noticed within it.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=connections,
            timeout=pool_wait,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
            # After Redis restarts, every pooled connection is stale; one immediate retry on a
            # fresh connection keeps that from looking like a second outage per connection.
            retry=Retry(NoBackoff(), retries=1),
            retry_on_error=[redis.ConnectionError],
        )
        self._client: Any = redis.Redis.from_pool(pool)  # owns the pool: aclose() closes it
        self._prefix = prefix
        self._hot_tracked = hot_prompts_tracked
        self._cache_max_value_bytes = cache_max_value_bytes
        self._take = self._client.register_script(TAKE)
        self._record = self._client.register_script(RECORD)
        self._hot = self._client.register_script(HOT)

    def key(self, *parts: object) -> str:
        return self._prefix + ":".join(str(p) for p in parts)

    async def take(
        self, user_id: str, event_ids: Sequence[str], now_ms: int, limit: int
    ) -> RateDecision:
        flags, count, reset = await self._take(
            keys=[self.key("event_rate_limiter", user_id)],
            args=[now_ms, RATE_WINDOW_MS, limit, RATE_LIMITER_TTL * 1000, *event_ids],
        )
        admitted = tuple(flag == "1" for flag in flags)
        return RateDecision(admitted, limit, max(0, limit - int(count)), int(reset))

    async def record(self, activity: Activity) -> None:
        second = activity.at_ms // 1000
        fields = {name: value for name, value in activity.counters.items() if value}
        fields.update({f"type:{t}": c for t, c in activity.by_type.items()})
        bucket = second // ACTIVITY_BUCKET_SECONDS
        args: list[str | int | float] = [
            activity.user_id, activity.session_id, activity.page_path, activity.thread_id or "",
            activity.at_ms, "1" if activity.counters.get("chat_messages") else "0", len(fields),
            METRICS_TTL, SESSION_TTL, HOT_PROMPTS_TTL, HOT_PROMPTS_RECENT, ACTIVITY_TTL,
            self._hot_tracked,
        ]  # fmt: skip
        for name, value in fields.items():
            args += [name, repr(float(value))]
        for digest, text in activity.prompts:
            args += [digest, text]
        await self._record(
            keys=[
                self.key("real_time_metrics", second),
                self.key("real_time_metrics", "users", bucket),
                self.key("real_time_metrics", "chat_sessions", bucket),
                self.key("user_session_cache", activity.session_id),
                self.key("user_session_cache", activity.session_id, "pages"),
                self.key("hot_prompts_cache"),
                self.key("hot_prompts_cache", "counts", second // HOT_BUCKET_SECONDS),
                self.key("hot_prompts_cache", "text", second // HOT_BUCKET_SECONDS),
            ],
            args=args,
        )

    async def totals(self, now_ms: int) -> Totals:
        seconds = window_seconds(now_ms, ENGAGEMENT_WINDOW_SECONDS)
        buckets = activity_buckets(now_ms)
        async with self._client.pipeline(transaction=False) as pipe:
            for second in seconds:
                pipe.hmget(self.key("real_time_metrics", second), COUNTERS)
            pipe.pfcount(*(self.key("real_time_metrics", "users", b) for b in buckets))
            pipe.pfcount(*(self.key("real_time_metrics", "chat_sessions", b) for b in buckets))
            replies = await pipe.execute()
        per_second, users, chats = replies[: len(seconds)], replies[-2], replies[-1]
        window = dict.fromkeys(COUNTERS, 0.0)
        for values in per_second:
            for name, value in zip(COUNTERS, values, strict=True):
                if value is not None:
                    window[name] += float(value)
        last_minute = sum(float(values[0] or 0) for values in per_second[-60:])
        return Totals(last_minute, window, int(users), int(chats))

    async def session(self, session_id: str, now_ms: int) -> dict[str, str] | None:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.key("user_session_cache", session_id))
            pipe.scard(self.key("user_session_cache", session_id, "pages"))
            fields, pages = await pipe.execute()
        if not fields:
            return None
        return {**fields, "pages_visited": str(pages)}

    async def hot_prompts(self, now_ms: int, limit: int) -> list[tuple[str, str, int]]:
        buckets = hot_buckets(now_ms)
        # A scratch key per call (a worker's reads may overlap); deleted by the script, and
        # never left behind without a TTL: the script runs atomically.
        keys = [self.key("hot_prompts_cache", "union", uuid.uuid4().hex)]
        keys += [self.key("hot_prompts_cache", "counts", b) for b in buckets]
        keys += [self.key("hot_prompts_cache", "text", b) for b in reversed(buckets)]
        flat = await self._hot(keys=keys, args=[limit])
        return [(flat[i], flat[i + 1], int(flat[i + 2])) for i in range(0, len(flat), 3)]

    async def recent_prompts(self) -> list[str]:
        recent: list[str] = await self._client.lrange(self.key("hot_prompts_cache"), 0, -1)
        return recent

    async def cache_get(self, key: str) -> bytes | None:
        value: str | None = await self._client.get(self.key("report_cache", key))
        return value.encode() if value is not None else None

    async def cache_put(self, key: str, value: bytes, ttl_seconds: int) -> None:
        if len(value) > self._cache_max_value_bytes:
            return
        await self._client.set(self.key("report_cache", key), value.decode(), ex=ttl_seconds)

    async def forget(self, user_ids: Sequence[str], prompt_hashes: Sequence[str]) -> int:
        ids, removed = set(user_ids), 0
        if ids:
            removed += await self._client.delete(
                *(self.key("event_rate_limiter", user) for user in ids)
            )
        # Sessions are keyed by session id: every session hash is looked at (an erasure is
        # rare; SCAN walks the keys without blocking Redis).
        async for key in self._client.scan_iter(match=self.key("user_session_cache", "*")):
            if key.endswith(":pages"):
                continue
            if await self._client.hget(key, "user_id") in ids:
                removed += await self._client.delete(key, f"{key}:pages")
        digests = list(prompt_hashes)
        async for key in self._client.scan_iter(match=self.key("hot_prompts_cache", "*")):
            if digests and ":counts:" in key:
                removed += await self._client.zrem(key, *digests)
            elif digests and ":text:" in key:
                removed += await self._client.hdel(key, *digests)
        for digest in digests:
            removed += await self._client.lrem(self.key("hot_prompts_cache"), 0, digest)
        async for key in self._client.scan_iter(match=self.key("report_cache", "*")):
            removed += await self._client.delete(key)
        return int(removed)

    async def tag_fired(self, container: str, version: str, now_ms: int) -> None:
        key = self.key("tag_heartbeats")
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(key, container, f"{now_ms} {version}")
            pipe.expire(key, TAG_HEARTBEATS_TTL)
            await pipe.execute()

    async def tag_heartbeats(self) -> dict[str, tuple[int, str]]:
        raw: dict[str, str] = await self._client.hgetall(self.key("tag_heartbeats"))
        out = {}
        for container, value in raw.items():
            at, _, version = value.partition(" ")
            out[container] = (int(at), version)
        return out

    async def ping(self) -> None:
        await self._client.ping()

    async def used_memory(self) -> int | None:
        info: dict[str, object] = await self._client.info("memory")
        used = info.get("used_memory")
        return int(used) if isinstance(used, int | str) else None

    async def close(self) -> None:
        await self._client.aclose()
