"""The live state on Redis (redis-py asyncio with hiredis), shared by every worker.

Rate limiting and recording are one Lua script (`LIVE`: atomic, one command for many changes),
and the calls of every request are coalesced (`Coalescer`): all the takes and records made
while the previous batch was on its way to Redis go in the next one, as one script run, the
records summed per key first. Under load one round trip serves tens of requests; a lone request
still goes out on the next turn of the event loop. A record is not waited for
(`record_nowait`): it rides with the next batch of takes. Reads are one pipeline each.
Key layout and TTLs: see `live/base.py`. All keys of a script are passed in KEYS; on a Redis
Cluster they would also need a common hash tag, which this layout does not give.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar, cast

import orjson
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

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

# One run per batch of calls: first every rate-limit take, in order (several takes of one user
# see each other's admissions, as separate calls would), then what the batch's records changed.
# The two parts touch disjoint keys, so their order across kinds does not matter.
# KEYS: every key the batch touches; the JSON arguments name them by index.
# ARGV[1] the takes' JSON ("" for none): one [key index, now ms, limit, [event ids...]] per
# take; ARGV[2] window ms, ARGV[3] window TTL ms.
# Returns per take: the admitted flags ("1"/"0" per id), the count in the window, and when it
# resets.
# ARGV[4] the records' JSON ("" for none), summed per key in Python (`LiveBatch`): one
# HINCRBYFLOAT per counter per second however many requests the batch holds:
#   c: [[second's counters, {field: increment}]], u / h: [[10 s HyperLogLog, [members]]]
#      (active users / chat sessions),
#   s: [[session, its pages, user, first seen, last seen, events, last page, [pages], last
#      thread]] ("" for none), in the order of their last activity,
#   p: [[counts, texts, {hash: count}, {hash: text}]] per 5-minute bucket,
#   r: the recent list, then prompt hashes in the order asked.
# ARGV[5..10]: TTLs (metrics, session, hot, activity), recent length, tracked per bucket.
# A bucket that reaches twice the tracked number keeps its most asked half (and their texts):
# one trim per `tracked` new prompts, so amortised O(log n) per prompt.
LIVE = """
local out = {}
if ARGV[1] ~= '' then
  local takes = cjson.decode(ARGV[1])
  local window = tonumber(ARGV[2])
  local ttl = ARGV[3]
  for t = 1, #takes do
    local key, now, limit, ids = KEYS[takes[t][1]], takes[t][2], takes[t][3], takes[t][4]
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    local count = redis.call('ZCARD', key)
    local fresh = count == 0  -- most takes: a user's first request of the minute
    local flags = {}
    local add = {}
    local added = {}  -- an id twice in one take counts once, as in the window
    for i = 1, #ids do
      if added[ids[i]] or (not fresh and redis.call('ZSCORE', key, ids[i])) then
        flags[#flags + 1] = '1'
      elseif count < limit then
        count = count + 1
        add[#add + 1] = now
        add[#add + 1] = ids[i]
        added[ids[i]] = true
        flags[#flags + 1] = '1'
      else
        flags[#flags + 1] = '0'
      end
    end
    if #add > 0 then
      redis.call('ZADD', key, unpack(add))
    end
    local reset = now + window  -- when the oldest admission leaves the window
    if not fresh then
      reset = tonumber(redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2]) + window
    end
    if count > 0 then
      redis.call('PEXPIRE', key, ttl)
    end
    out[t] = {table.concat(flags), count, reset}
  end
end
if ARGV[4] == '' then
  return out
end
local batch = cjson.decode(ARGV[4])
local ttl_metrics, ttl_session, ttl_hot, ttl_activity = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local recent_length = tonumber(ARGV[9])
local tracked = tonumber(ARGV[10])
for _, second in ipairs(batch.c) do
  local key = KEYS[second[1]]
  for field, value in pairs(second[2]) do
    redis.call('HINCRBYFLOAT', key, field, value)
  end
  redis.call('EXPIRE', key, ttl_metrics)
end
for _, set in ipairs(batch.u) do
  redis.call('PFADD', KEYS[set[1]], unpack(set[2]))
  redis.call('EXPIRE', KEYS[set[1]], ttl_activity)
end
for _, set in ipairs(batch.h) do
  redis.call('PFADD', KEYS[set[1]], unpack(set[2]))
  redis.call('EXPIRE', KEYS[set[1]], ttl_activity)
end
for _, s in ipairs(batch.s) do
  local key, pages = KEYS[s[1]], KEYS[s[2]]
  local fields = {'user_id', s[3], 'last_seen', s[5]}
  if s[7] ~= '' then
    fields[#fields + 1] = 'current_page'
    fields[#fields + 1] = s[7]
    redis.call('SADD', pages, unpack(s[8]))
    redis.call('EXPIRE', pages, ttl_session)
  end
  if s[9] ~= '' then
    fields[#fields + 1] = 'current_thread'
    fields[#fields + 1] = s[9]
  end
  redis.call('HSETNX', key, 'first_seen', s[4])
  redis.call('HSET', key, unpack(fields))
  redis.call('HINCRBY', key, 'event_count', s[6])
  redis.call('EXPIRE', key, ttl_session)
end
if #batch.p > 0 then
  local recent = KEYS[batch.r[1]]
  for i = 2, #batch.r, 1000 do
    redis.call('LPUSH', recent, unpack(batch.r, i, math.min(i + 999, #batch.r)))
  end
  for _, bucket in ipairs(batch.p) do
    local counts, texts = KEYS[bucket[1]], KEYS[bucket[2]]
    for digest, count in pairs(bucket[3]) do
      redis.call('ZINCRBY', counts, count, digest)
    end
    for digest, text in pairs(bucket[4]) do
      redis.call('HSET', texts, digest, text)
    end
    local size = redis.call('ZCARD', counts)
    if size >= 2 * tracked then
      local dropped = redis.call('ZRANGE', counts, 0, size - tracked - 1)
      redis.call('ZREMRANGEBYRANK', counts, 0, size - tracked - 1)
      for j = 1, #dropped, 1000 do
        redis.call('HDEL', texts, unpack(dropped, j, math.min(j + 999, #dropped)))
      end
    end
    redis.call('EXPIRE', counts, ttl_hot)
    redis.call('EXPIRE', texts, ttl_hot)
  end
  redis.call('LTRIM', recent, 0, recent_length - 1)
  redis.call('EXPIRE', recent, ttl_hot)
end
return out
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


log = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

# Calls per script run at most: bounds how long one run holds Redis (it serves nobody else
# meanwhile) and the size of its arguments.
MAX_BATCH = 256
# Updates queued without waiting (`submit`) while the queue is shorter than this: past it (Redis
# slow but not yet timing out), an update is refused, and the service's own bound on pending
# updates drops and counts the excess (`Service.record_activity`), so memory stays bounded and
# a take waits behind at most a few batches.
MAX_QUEUED = 4 * MAX_BATCH
# How long closing waits for what is queued to be sent before cancelling it.
CLOSE_DRAIN_SECONDS = 1.0


class Backlogged(ConnectionError):
    """The coalescer's queue is full: the caller does the work another way (or drops it)."""


class Coalescer(Generic[ItemT, ResultT]):
    """Group commit: calls made while a batch is on its way wait and leave together in the next.

    `send(items)` returns one result per item, in order; when it raises, every call of that
    batch raises the same error and every submitted item's `on_error` hears of it (each caller
    then falls back on its own, see `LiveStateGuard`). At most one batch is in flight, so under
    load a batch holds what came in during one round trip, and an idle one leaves on the next
    turn of the event loop. Once closed, a call raises and a submission's `on_error` is called
    at once.
    """

    def __init__(
        self,
        send: Callable[[list[ItemT]], Awaitable[list[ResultT]]],
        max_batch: int,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self._send = send
        self._max_batch = max_batch
        self._max_queued = max_queued
        # Each item with who hears of it: a caller waiting on a future, or a callback that only
        # hears of a failure (`submit`).
        self._queue: list[tuple[ItemT, asyncio.Future[ResultT] | None, _OnError[ItemT] | None]]
        self._queue = []
        self._sender: asyncio.Task[None] | None = None
        self._closed = False

    async def call(self, item: ItemT) -> ResultT:
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._enqueue(item, future, None)
        return await future

    def submit(self, item: ItemT, on_error: _OnError[ItemT]) -> None:
        """`call` without waiting for the result: `on_error(item, error)` is called if the
        batch fails or the coalescer closes before it is sent. Raises `Backlogged` (nothing
        queued) when `max_queued` items wait already."""
        if len(self._queue) >= self._max_queued:
            raise Backlogged(f"{len(self._queue)} live-state calls wait for Redis")
        self._enqueue(item, None, on_error)

    def _enqueue(
        self, item: ItemT, future: asyncio.Future[ResultT] | None, on_error: _OnError[ItemT] | None
    ) -> None:
        if self._closed:
            _fail([(item, future, on_error)], ConnectionError("the live-state client is closed"))
            return
        self._queue.append((item, future, on_error))
        if self._sender is None:
            # Starts on the next turn of the loop: the calls made in this one join it.
            self._sender = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    results = await self._send([item for item, _, _ in batch])
                except BaseException as exc:
                    _fail(batch, exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future, _), result in zip(batch, results, strict=True):
                    if future is not None and not future.done():  # its caller may have gone
                        future.set_result(result)
        finally:
            self._sender = None
            self._fail_queued()

    def _fail_queued(self) -> None:
        if self._queue:  # cancelled (closing): nobody is left to send these
            queued, self._queue = self._queue, []
            _fail(queued, ConnectionError("the live-state client is closing"))

    async def close(self, drain_seconds: float = 0.0) -> None:
        """Waits up to `drain_seconds` for what is queued to be sent, then cancels the batch in
        flight: its calls and the queued ones raise (or hear of it). Later calls raise."""
        self._closed = True
        sender = self._sender
        try:
            if sender is not None and drain_seconds > 0:
                await asyncio.wait([sender], timeout=drain_seconds)
        finally:
            if self._sender is not None:
                self._sender.cancel()
                self._sender = None
            # A sender cancelled before its first step never runs its `finally`.
            self._fail_queued()


_OnError = Callable[[ItemT, Exception], None]


def _fail(
    batch: Sequence[tuple[ItemT, asyncio.Future[Any] | None, _OnError[ItemT] | None]],
    error: BaseException,
) -> None:
    for item, future, on_error in batch:
        if future is not None:
            if not future.done():
                future.set_exception(error)
        elif on_error is not None:  # hears of a cancellation (closing) as a lost connection
            try:
                on_error(
                    item, error if isinstance(error, Exception) else ConnectionError("closing")
                )
            except Exception:  # one callback's failure must not leave the rest unanswered
                log.exception("a live-state failure callback failed")


_Take = tuple[str, list[str], int, int]  # user id, event ids, now ms, limit


class LiveBatch:
    """What a batch of calls asks of LIVE: the takes in order, and what the activities change,
    summed per key, as KEYS and the JSON arguments.

    The same end state as taking and recording them one by one in order, with one difference: a
    bucket of hot prompts is trimmed (see LIVE) after the batch's prompts are counted, not
    after each request's, so it may hold up to a batch's prompts more than twice the tracked
    number before it is cut back to the tracked number.
    """

    def __init__(self, key: Callable[..., str]) -> None:
        self._key = key
        self.keys: dict[str, int] = {}
        self._takes: list[list[Any]] = []
        self._seconds: dict[int, dict[str, float]] = {}
        self._users: dict[int, dict[str, None]] = {}
        self._chats: dict[int, dict[str, None]] = {}
        # session id -> [first seen, last seen, user, events, last page, pages, last thread]
        self._sessions: dict[str, list[Any]] = {}
        self._prompts: dict[int, tuple[dict[str, int], dict[str, str]]] = {}
        self._recent: list[str] = []

    def take(self, take: _Take) -> None:
        user_id, ids, now_ms, limit = take
        self._takes.append([self._index("event_rate_limiter", user_id), now_ms, limit, ids])

    def add(self, activity: Activity) -> None:
        a = activity
        second = a.at_ms // 1000
        counters = self._seconds.setdefault(second, {})
        for name, value in a.counters.items():
            if value:
                counters[name] = counters.get(name, 0.0) + value
        for event_type, count in a.by_type.items():
            if count:
                field = f"type:{event_type}"
                counters[field] = counters.get(field, 0.0) + count
        bucket = second // ACTIVITY_BUCKET_SECONDS
        self._users.setdefault(bucket, {})[a.user_id] = None
        if a.counters.get("chat_messages"):
            self._chats.setdefault(bucket, {})[a.session_id] = None
        session = self._sessions.pop(a.session_id, None)
        if session is None:
            session = [str(a.at_ms), "", "", 0, "", {}, ""]
        # Re-inserted: sessions are written in the order of their last activity.
        self._sessions[a.session_id] = session
        session[1], session[2] = str(a.at_ms), a.user_id
        session[3] += int(a.counters.get("events", 0))
        if a.page_path:
            session[4] = a.page_path
            session[5][a.page_path] = None
        if a.thread_id:
            session[6] = a.thread_id
        if a.prompts:
            counts, texts = self._prompts.setdefault(second // HOT_BUCKET_SECONDS, ({}, {}))
            for digest, text in a.prompts:
                counts[digest] = counts.get(digest, 0) + 1
                texts[digest] = text
                self._recent.append(digest)

    def _index(self, *parts: object) -> int:
        return self.keys.setdefault(self._key(*parts), len(self.keys) + 1)

    def arguments(self) -> tuple[list[str], str, str]:
        """KEYS, the takes' JSON (ARGV[1]) and the records' JSON (ARGV[4]) of LIVE."""
        takes = orjson.dumps(self._takes).decode() if self._takes else ""
        if not self._sessions:  # every activity has a session: no activity in this batch
            return list(self.keys), takes, ""
        c = [[self._index("real_time_metrics", second), {f: repr(v) for f, v in fields.items()}]
             for second, fields in self._seconds.items() if fields]  # fmt: skip
        u = [[self._index("real_time_metrics", "users", b), list(users)]
             for b, users in self._users.items()]  # fmt: skip
        h = [[self._index("real_time_metrics", "chat_sessions", b), list(sessions)]
             for b, sessions in self._chats.items()]  # fmt: skip
        s = [[self._index("user_session_cache", sid),
              self._index("user_session_cache", sid, "pages"),
              user, first, last, events, page, list(pages), thread]
             for sid, (first, last, user, events, page, pages, thread)
             in self._sessions.items()]  # fmt: skip
        p = [[self._index("hot_prompts_cache", "counts", b),
              self._index("hot_prompts_cache", "text", b), counts, texts]
             for b, (counts, texts) in self._prompts.items()]  # fmt: skip
        r: list[Any] = [self._index("hot_prompts_cache"), *self._recent] if p else []
        batch = {"c": c, "u": u, "h": h, "s": s, "p": p, "r": r}
        return list(self.keys), takes, orjson.dumps(batch).decode()


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
        self._live_sha: str = self._client.register_script(LIVE).sha
        # The batches' own connection, outside the pool: at most one batch is in flight, and a
        # client call costs twice the round trip's CPU in the pool's and the command's
        # bookkeeping (112 against 67 µs per EVALSHA here, uvloop, redis-py 8.1).
        self._live_connection: Any = pool.make_connection()  # type: ignore[no-untyped-call]
        self._hot = self._client.register_script(HOT)
        self._calls: Coalescer[_Take | Activity, RateDecision | None]
        self._calls = Coalescer(self._send, MAX_BATCH)

    def key(self, *parts: object) -> str:
        return self._prefix + ":".join(str(p) for p in parts)

    async def take(
        self, user_id: str, event_ids: Sequence[str], now_ms: int, limit: int
    ) -> RateDecision:
        return cast(RateDecision, await self._calls.call((user_id, list(event_ids), now_ms, limit)))

    async def record(self, activity: Activity) -> None:
        await self._calls.call(activity)

    def record_nowait(
        self, activity: Activity, on_error: Callable[[Activity, Exception], None]
    ) -> None:
        """Queued for the next batch; `on_error(activity, error)` if that batch fails or the
        state closes first. Raises `Backlogged` (a ConnectionError) when MAX_QUEUED calls wait."""
        # Only activities are submitted, so `on_error` only ever hears of one.
        self._calls.submit(activity, on_error)  # type: ignore[arg-type]

    async def _send(self, calls: list[_Take | Activity]) -> list[RateDecision | None]:
        batch = LiveBatch(self.key)
        for call in calls:
            if isinstance(call, Activity):
                batch.add(call)
            else:
                batch.take(call)
        keys, takes, records = batch.arguments()
        replies = iter(await self._run_live(
            keys,
            [takes, RATE_WINDOW_MS, RATE_LIMITER_TTL * 1000, records, METRICS_TTL, SESSION_TTL,
             HOT_PROMPTS_TTL, ACTIVITY_TTL, HOT_PROMPTS_RECENT, self._hot_tracked],
        ))  # fmt: skip
        results: list[RateDecision | None] = []
        for call in calls:
            if isinstance(call, Activity):
                results.append(None)
                continue
            limit = call[3]
            flags, count, reset = next(replies)
            results.append(RateDecision(tuple(flag == "1" for flag in flags), limit,
                                        max(0, limit - int(count)), int(reset)))  # fmt: skip
        return results

    async def _run_live(self, keys: list[str], args: list[object]) -> Any:
        """LIVE's reply, on the batches' connection (one batch at a time: see `Coalescer`).

        Loads the script when Redis does not know it (NOSCRIPT, after a restart or a SCRIPT
        FLUSH), and sends once more on a new connection when the connection was lost (a
        restart leaves it stale: the pool's clients do the same, so a loss after Redis ran the
        script may apply a batch's updates twice; its takes are idempotent per event id). A
        timeout is not retried (Redis may still be running the script): it raises redis-py's
        TimeoutError, a second loss its ConnectionError, and the connection is closed.
        A Redis error in the script (say WRONGTYPE on a key someone else wrote) fails the whole
        batch, takes included; what the script wrote before it stays (Lua does not roll back).
        """
        connection = self._live_connection
        command = ("EVALSHA", self._live_sha, len(keys), *keys, *args)
        for attempt in range(3):
            try:
                await connection.send_command(*command, check_health=False)
                return await connection.read_response()
            except NoScriptError:
                await connection.send_command("SCRIPT", "LOAD", LIVE, check_health=False)
                await connection.read_response()
            except redis.ConnectionError:
                if attempt:
                    raise
        raise redis.ConnectionError("LIVE was not run after loading it and reconnecting")

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
        await self._calls.close(CLOSE_DRAIN_SECONDS)
        await self._live_connection.disconnect()
        await self._client.aclose()
