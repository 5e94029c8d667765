"""The load test: open-loop traffic at a fixed rate, then the read-back of what was stored.

Open loop: request k of the run is due at `start + k / (rate / batch)` seconds, whatever the
replies do (as browsers do: one page does not wait for another's reply). Due requests go to a
queue of at most `connections` entries that `connections` keep-alive HTTP/1.1 connections take
from, one request in flight each (browsers do not pipeline). A request that comes due while the
queue is full is not sent and is counted as `missed`: when the service cannot keep up, the
report says so (achieved rate, missed requests) instead of a backlog growing without bound.
Latency is measured from the moment a request was due, not from when a connection was free, so
time spent waiting for a connection counts (no coordinated omission).

Bounds: at most `floor(rate * duration / batch)` requests of `batch` events are sent, so never
more than `rate * duration` events; sending stops at `duration` seconds, replies are awaited at
most `REPLY_GRACE_SECONDS` more, and the read-back at most `drain_timeout` seconds. Only a
loopback address is accepted unless `allow_remote` is set.

The client is asyncio's transports on uvloop with a minimal HTTP/1.1 reply parser (status line,
`Content-Length` or chunked body, `Connection: close`) and bodies built by `traffic.Traffic`
from byte templates: measured against a bare server on the 2-core build machine, see the README.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import ipaddress
import math
import secrets
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any, TextIO, cast

import orjson

from netra_analytics import demo
from netra_analytics.loadtest.traffic import CONTENT_TYPE, ENVIRONMENT, EVENTS_PATH, Traffic
from netra_analytics.progress import Progress

READBACK_PATH = "/api/analytics/admin/loadtest/{run_id}"
REPLY_GRACE_SECONDS = 10.0  # after the last request is due, for the replies still on the way
# Once the spool is empty, a stored count short of the acknowledged one is final when it has not
# moved for this long: longer than the default flush interval (EVENT_FLUSH_INTERVAL_MS, 5 s),
# since with several workers `/health/ready` shows one worker's spool, not every one's.
STEADY_SECONDS = 6.0
READ_INTERVAL = 1.0  # seconds between read-back polls
PROGRESS_INTERVAL = 0.25
TICK = 0.001  # seconds: the scheduler's resolution
MAX_REPLY_HEAD = 64 * 1024
# Not the loop's clock: uvloop's `loop.time()` has millisecond resolution, too coarse for the
# latency of a loopback request.
CLOCK = time.perf_counter
NEEDS_ADMIN = (
    "the read-back of stored events (the loss figure) is admin-only: pass an admin key with "
    "--api-key or NETRA_API_KEY, or --no-readback to run without the loss figure"
)


class LoadTestError(Exception):
    """The load test cannot run (bad URL, unreachable service, refused key): one line saying
    why."""


@dataclasses.dataclass(frozen=True)
class LoadTestResult:
    """What a run sent, what the service answered, and what it stored.

    Counts are of events unless named `requests_*`; `*_per_second` over `seconds`, the time
    from the first request's due time to the last reply. `latency_ms`: percentiles (nearest
    rank) of the time from a request's due time to its reply's last byte, over every answered
    request. `loss` = `acknowledged` - `stored` (`stored`: the run's events in
    `frontend_events`, read back after the spool drained; None without read-back), and
    `duplicates` = `stored` - distinct (user_id, event_id) among them.
    """

    run_id: str
    url: str
    rate: float  # events/s asked
    duration: float  # seconds asked
    batch: int  # events per request
    users: int  # browsers the requests are drawn from
    planned_requests: int
    requests_sent: int
    requests_answered: int
    requests_missed: int  # came due while every connection was busy and the queue full
    requests_failed: int  # connection refused, reset or closed before the reply
    requests_unanswered: int  # sent, no reply within the grace after the run
    events_sent: int
    acknowledged: int  # `accepted` of the 2xx replies
    not_stored: int  # 2xx but not kept: consent signals (`not_stored` in the reply)
    bot_requests: int  # 2xx replies that said `"bot": true` (should be 0: real browsers' agents)
    rejected: dict[str, int]  # reason -> events rejected in 2xx replies
    rate_limited: int  # events refused for the per-user limit (429s, and `rate_limited` above)
    statuses: dict[int, int]  # non-2xx replies by status
    seconds: float
    latency_ms: dict[str, float]  # p50, p95, p99, max
    stored: int | None = None
    duplicates: int | None = None
    loss: int | None = None
    drained: bool | None = None  # the read-back saw an empty spool and a steady count
    drain_seconds: float | None = None

    @property
    def acknowledged_per_second(self) -> float:
        return self.acknowledged / self.seconds if self.seconds > 0 else 0.0

    @property
    def sent_per_second(self) -> float:
        return self.events_sent / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["acknowledged_per_second"] = round(self.acknowledged_per_second, 1)
        out["sent_per_second"] = round(self.sent_per_second, 1)
        out["statuses"] = {str(k): v for k, v in self.statuses.items()}
        return out


def run(
    url: str,
    *,
    rate: float = 10_000,
    duration: float = 60,
    batch: int = 20,
    users: int = 100_000,
    api_key: str | None = None,
    connections: int = 128,
    allow_remote: bool = False,
    readback: bool = True,
    drain_timeout: float = 60.0,
    reply_grace: float = REPLY_GRACE_SECONDS,
    seed: int = 1,
    progress: TextIO | None = sys.stderr,
) -> LoadTestResult:
    """Send `rate` events/s for `duration` s to `url`'s events endpoint in requests of exactly
    `batch` events, each from one of `users` browsers (see `traffic`), then read back how many
    of the run's events the store holds (admin endpoint `READBACK_PATH`, needs `api_key` of an
    admin unless `readback` is False). Replies are awaited `reply_grace` seconds after the
    last request was due; the read-back at most `drain_timeout` seconds. Blocking: runs its own
    event loop (uvloop), so call it from a thread without one.

    Raises LoadTestError before sending anything when the URL is not loopback (and not
    `allow_remote`), the service cannot be reached, or the key is refused.
    """
    if rate <= 0 or duration <= 0 or batch < 1 or users < 1 or connections < 1:
        raise LoadTestError("rate, duration, batch, users and connections must be positive")
    target = _target(url, allow_remote=allow_remote)
    run_id = secrets.token_hex(6)
    if readback:
        if not api_key:
            raise LoadTestError(NEEDS_ADMIN)
        _read_stored(url, run_id, api_key)  # the key works before anything is sent
    traffic = Traffic(run_id, seed=seed)
    plan = _Plan(rate=rate, duration=duration, batch=batch, users=users)
    sender = _Sender(target, traffic, plan, connections, reply_grace, progress)
    import uvloop  # with uvicorn[standard]; the loop that makes the client cheap

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(sender.run())
    result = sender.result(run_id, url)
    if not readback or api_key is None:
        return result
    return _with_readback(result, url, api_key, drain_timeout, progress)


# --- the target -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Target:
    host: str  # the address connected to
    port: int
    ssl: ssl.SSLContext | None
    server_name: str  # the Host header


def _target(url: str, *, allow_remote: bool) -> _Target:
    """Where to connect for `url`; LoadTestError for a bad URL, a name that does not resolve,
    or an address that is not loopback (unless `allow_remote`)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoadTestError(f"{url!r} is not an http:// or https:// URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        raise LoadTestError(f"cannot resolve {parts.hostname!r}: {exc}") from None
    addresses = [str(info[4][0]) for info in found]
    remote = [a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_loopback]
    if remote and not allow_remote:
        raise LoadTestError(
            f"{parts.hostname} is not a loopback address ({remote[0]}): a load test sends "
            "thousands of events a second; pass --allow-remote to aim it at another machine"
        )
    context = ssl.create_default_context() if parts.scheme == "https" else None
    host_header = parts.netloc.rpartition("@")[2]
    return _Target(addresses[0], port, context, host_header)


# --- sending --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Plan:
    rate: float
    duration: float
    batch: int
    users: int

    @property
    def requests(self) -> int:
        """Whole requests within rate x duration events."""
        return math.floor(self.rate * self.duration / self.batch + 1e-9)

    @property
    def interval(self) -> float:
        return self.batch / self.rate


class _Reply:
    __slots__ = ("body", "close", "status")

    def __init__(self, status: int, body: bytes, close: bool) -> None:
        self.status, self.body, self.close = status, body, close


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[_Reply] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            reply = _parse_reply(self.buffer)
        except ValueError as exc:
            waiter.set_exception(ConnectionError(f"bad reply: {exc}"))
            self.close()
            return
        if reply is not None:
            waiter.set_result(reply)
            if reply.close:
                self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed before the reply"))

    def send(self, payload: bytes) -> asyncio.Future[_Reply]:
        assert self.transport is not None
        self.waiter = self.loop.create_future()
        self.transport.write(payload)
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close now, unsent bytes and all (the run is over)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _parse_reply(buffer: bytearray) -> _Reply | None:
    """The first complete HTTP/1.1 reply in `buffer` (removed from it), or None while it is
    incomplete. ValueError for what is not an HTTP reply."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_REPLY_HEAD:
            raise ValueError("reply head too large")
        return None
    head = bytes(buffer[:end]).lower()
    if not head.startswith(b"http/1."):
        raise ValueError("not an HTTP/1.x reply")
    status = int(head[9:12])
    close = b"\r\nconnection: close" in head
    start = end + 4
    at = head.find(b"\r\ncontent-length:")
    if at >= 0:
        line_end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : line_end if line_end > 0 else len(head)])
        if len(buffer) < start + length:
            return None
        body = bytes(buffer[start : start + length])
        del buffer[: start + length]
        return _Reply(status, body, close)
    if b"\r\ntransfer-encoding: chunked" in head:
        return _parse_chunked(buffer, start, status, close)
    if status in (204, 304) or 100 <= status < 200:
        del buffer[:start]
        return _Reply(status, b"", close)
    raise ValueError("reply without Content-Length or chunked body")


def _parse_chunked(buffer: bytearray, start: int, status: int, close: bool) -> _Reply | None:
    chunks: list[bytes] = []
    at = start
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(buffer[at:line_end]).split(b";")[0], 16)
        if size == 0:  # then trailers, if any, and an empty line
            done = buffer.find(b"\r\n\r\n", line_end)
            if done < 0:
                return None
            del buffer[: done + 4]
            return _Reply(status, b"".join(chunks), close)
        if len(buffer) < line_end + 2 + size + 2:
            return None
        chunks.append(bytes(buffer[line_end + 2 : line_end + 2 + size]))
        at = line_end + 2 + size + 2


class _Sender:
    """The open-loop run: a scheduler, `connections` workers, the tallies."""

    def __init__(
        self,
        target: _Target,
        traffic: Traffic,
        plan: _Plan,
        connections: int,
        reply_grace: float,
        progress: TextIO | None,
    ) -> None:
        self.target, self.traffic, self.plan = target, traffic, plan
        self.connections, self.reply_grace = connections, reply_grace
        self.bar = Progress(progress)
        self.rng = traffic.rng
        self.sent = self.missed = self.failed = self.answered = 0
        self.events_sent = self.acknowledged = self.not_stored = self.bots = 0
        self.rate_limited = 0
        self.rejected: collections.Counter[str] = collections.Counter()
        self.statuses: collections.Counter[int] = collections.Counter()
        self.latencies: list[float] = []
        self.open: set[_Connection] = set()
        self.started = self.finished = 0.0
        self.head = (
            f"POST {EVENTS_PATH} HTTP/1.1\r\nHost: {target.server_name}\r\n"
            f"Content-Type: {CONTENT_TYPE}\r\nAccept: */*\r\n"
        ).encode()

    def request(self, browser: int, body: bytes) -> bytes:
        return b"%sUser-Agent: %s\r\nContent-Length: %d\r\n\r\n%s" % (
            self.head, self.traffic.user_agent(browser), len(body), body,
        )  # fmt: skip

    async def run(self) -> None:
        queue: asyncio.Queue[tuple[float, bytes, int] | None] = asyncio.Queue(self.connections)
        workers = [asyncio.create_task(self._worker(queue)) for _ in range(self.connections)]
        shower = asyncio.create_task(self._show())
        self.started = CLOCK()
        try:
            await self._schedule(queue)
            deadline = self.started + self.plan.duration + self.reply_grace
            for _ in workers:  # one stop sign each, behind what is queued
                await asyncio.wait_for(queue.put(None), max(deadline - CLOCK(), 0.001))
            await asyncio.wait(workers, timeout=max(deadline - CLOCK(), 0.001))
        except TimeoutError:
            pass
        finally:
            self.finished = CLOCK()
            for task in (*workers, shower):
                task.cancel()
            await asyncio.gather(*workers, shower, return_exceptions=True)
            for connection in self.open:  # those still waiting for a reply
                connection.abort()
            await asyncio.sleep(0)  # their transports' close callbacks
            while not queue.empty():  # due, but no connection took them in time: not sent
                self.missed += queue.get_nowait() is not None
        self._show_now(done_all=True)

    async def _schedule(self, queue: asyncio.Queue[Any]) -> None:
        plan, traffic = self.plan, self.traffic
        total, interval, batch = plan.requests, plan.interval, plan.batch
        k = ordinal = 0
        while k < total:  # the last request is due before `duration` (see _Plan.requests)
            due = min(total, int((CLOCK() - self.started) / interval) + 1)
            stamp = datetime.now(UTC)
            while k < due:
                scheduled = self.started + k * interval
                k += 1
                if queue.full():
                    self.missed += 1
                    continue
                browser = self.rng.randrange(plan.users)
                body = traffic.body(browser, ordinal, batch, stamp, traffic.start())
                ordinal += batch
                queue.put_nowait((scheduled, self.request(browser, body), batch))
            if k < total:
                # At least a tick: shorter timers fire at once on uvloop (millisecond clock),
                # and the loop would spin; the requests of a tick go out together.
                await asyncio.sleep(max(TICK, self.started + k * interval - CLOCK()))

    async def _worker(self, queue: asyncio.Queue[tuple[float, bytes, int] | None]) -> None:
        loop = asyncio.get_running_loop()
        connection: _Connection | None = None
        while True:
            item = await queue.get()
            if item is None:
                break
            scheduled, payload, count = item
            self.sent += 1  # from here it counts as sent: answered, failed or unanswered
            self.events_sent += count
            try:
                if connection is None or connection.closed:
                    self.open.discard(connection)
                    _, connection = await loop.create_connection(
                        lambda: _Connection(loop),
                        self.target.host,
                        self.target.port,
                        ssl=self.target.ssl,
                        server_hostname=self.target.server_name.rsplit(":", 1)[0]
                        if self.target.ssl
                        else None,
                    )
                    self.open.add(connection)
                reply = await connection.send(payload)
            except (OSError, ConnectionError):
                self.failed += 1
                if connection is not None:
                    connection.close()
                    self.open.discard(connection)
                connection = None
                continue
            self.answered += 1
            self.latencies.append(CLOCK() - scheduled)
            self._tally(reply, count)
        if connection is not None:
            connection.close()
            self.open.discard(connection)

    def _tally(self, reply: _Reply, count: int) -> None:
        if 200 <= reply.status < 300:
            try:
                body = orjson.loads(reply.body)
                self.acknowledged += int(body["accepted"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                self.statuses[reply.status] += 1  # a 2xx we cannot read: shown, not counted
                return
            self.not_stored += int(body.get("not_stored", 0))
            self.bots += bool(body.get("bot"))
            for rejected in body.get("rejected") or ():
                reason = str(rejected.get("reason"))
                self.rejected[reason] += 1
                self.rate_limited += reason == "rate_limited"
            return
        self.statuses[reply.status] += 1
        if reply.status == 429:
            self.rate_limited += count

    async def _show(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            self._show_now()

    def _show_now(self, *, done_all: bool = False) -> None:
        elapsed = (self.finished or CLOCK()) - self.started
        share = 1.0 if done_all else elapsed / self.plan.duration
        text = (
            f"{self.acknowledged:,} events acknowledged, "
            f"{self.acknowledged / elapsed if elapsed else 0:,.0f}/s, "
            f"{self.missed:,} requests missed, {elapsed:.1f}/{self.plan.duration:g} s"
        )
        self.bar.show(share, text, done_all=done_all)

    def result(self, run_id: str, url: str) -> LoadTestResult:
        return LoadTestResult(
            run_id=run_id,
            url=url,
            rate=self.plan.rate,
            duration=self.plan.duration,
            batch=self.plan.batch,
            users=self.plan.users,
            planned_requests=self.plan.requests,
            requests_sent=self.sent,
            requests_answered=self.answered,
            requests_missed=self.missed,
            requests_failed=self.failed,
            requests_unanswered=self.sent - self.answered - self.failed,
            events_sent=self.events_sent,
            acknowledged=self.acknowledged,
            not_stored=self.not_stored,
            bot_requests=self.bots,
            rejected=dict(self.rejected),
            rate_limited=self.rate_limited,
            statuses=dict(self.statuses),
            seconds=max(self.finished - self.started, 0.0),
            latency_ms=_percentiles(self.latencies),
        )


def _percentiles(seconds: list[float]) -> dict[str, float]:
    """p50, p95, p99 (nearest rank) and max, in milliseconds; zeros when empty."""
    if not seconds:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(seconds)
    n = len(ordered)

    def rank(p: float) -> float:
        return round(ordered[max(math.ceil(p / 100 * n) - 1, 0)] * 1000, 2)

    return {"p50": rank(50), "p95": rank(95), "p99": rank(99), "max": round(ordered[-1] * 1000, 2)}


# --- read-back ------------------------------------------------------------------------------


def _read_stored(url: str, run_id: str, api_key: str) -> dict[str, Any]:
    """The admin endpoint's count of run `run_id`'s stored events; LoadTestError, one line,
    when it cannot be read."""
    address = url.rstrip("/") + READBACK_PATH.format(run_id=run_id)
    request = urllib.request.Request(  # noqa: S310 (the operator's own service)
        address, headers={"authorization": f"Bearer {api_key}", "accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            body: dict[str, Any] = orjson.loads(response.read())
            return body
    except urllib.error.HTTPError as exc:
        detail = _detail(exc.read())
        if exc.code == 401:
            raise LoadTestError(
                f"the service refused the API key ({detail}); {NEEDS_ADMIN}"
            ) from None
        if exc.code == 403:
            raise LoadTestError(f"the key is not an admin's ({detail}); {NEEDS_ADMIN}") from None
        if exc.code == 404:
            raise LoadTestError(
                f"{address} answered 404: this service has no load-test read-back (older version?)"
            ) from None
        raise LoadTestError(f"{address} answered {exc.code}: {detail}") from None
    except (OSError, ValueError) as exc:
        raise LoadTestError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None


def _detail(body: bytes) -> str:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode(errors="replace").strip()
    if isinstance(parsed, dict):
        return str(parsed.get("detail") or parsed.get("message") or parsed)[:200]
    return str(parsed)[:200]


def _with_readback(
    result: LoadTestResult, url: str, api_key: str, timeout: float, progress: TextIO | None
) -> LoadTestResult:
    """Wait until the service's spool is empty (per `/health/ready`) and the run's stored
    count has reached the acknowledged one or not moved for STEADY_SECONDS, at most `timeout`
    s; then the count, duplicates and loss (`drained` False when the timeout came first: the
    loss is then an upper bound)."""
    started = time.monotonic()
    if progress is not None:
        progress.write("waiting for the service to store what it acknowledged ...\n")
        progress.flush()
    spool_empty = demo.wait_stored(url, timeout) is not None
    previous, changed = -1, time.monotonic()
    while True:
        last = _read_stored(url, result.run_id, api_key)
        stored = int(last["stored"])
        if stored != previous:
            previous, changed = stored, time.monotonic()
        steady = time.monotonic() - changed >= STEADY_SECONDS
        if spool_empty and (stored >= result.acknowledged or steady):
            drained = True
            break
        if time.monotonic() - started + READ_INTERVAL > timeout:
            drained = False
            break
        time.sleep(READ_INTERVAL)
        if not spool_empty:
            spool_empty = demo.wait_stored(url, 0.01) is not None
    return dataclasses.replace(
        result,
        stored=stored,
        duplicates=int(last["duplicates"]),
        loss=result.acknowledged - stored,
        drained=drained,
        drain_seconds=round(time.monotonic() - started, 2),
    )


# --- the report -----------------------------------------------------------------------------


def table(result: LoadTestResult) -> str:
    """The result as a two-column table for a terminal."""
    lat = result.latency_ms
    rows: list[tuple[str, str]] = [
        ("run id", f"{result.run_id} (environment {ENVIRONMENT})"),
        ("asked", f"{result.rate:,.0f} events/s for {result.duration:g} s, {result.batch} per "
                  f"request, {result.users:,} browsers"),
        ("requests", f"{result.requests_sent:,} sent of {result.planned_requests:,} planned, "
                     f"{result.requests_answered:,} answered, {result.requests_missed:,} missed "
                     f"(not sent on time), {result.requests_failed:,} failed, "
                     f"{result.requests_unanswered:,} unanswered"),
        ("events sent", f"{result.events_sent:,} ({result.sent_per_second:,.0f}/s)"),
        ("acknowledged", f"{result.acknowledged:,} ({result.acknowledged_per_second:,.0f}/s "
                         f"over {result.seconds:.1f} s)"),
        ("latency", f"p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, "
                    f"p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms"),
        ("non-2xx", _counts(result.statuses)),
        ("rejected", _counts(result.rejected)),
        ("rate limited", f"{result.rate_limited:,} events"),
    ]  # fmt: skip
    if result.not_stored or result.bot_requests:
        rows.append(("not stored", f"{result.not_stored:,} (consent), {result.bot_requests} "
                                   "requests taken for a bot's"))  # fmt: skip
    if result.stored is None:
        rows.append(("stored", "not read back (--no-readback)"))
    else:
        drained = "" if result.drained else " (NOT drained within the timeout: a lower bound)"
        rows += [
            ("stored", f"{result.stored:,}, read back {result.drain_seconds:.1f} s after the "
                       f"run{drained}"),
            ("duplicates", f"{result.duplicates:,}"),
            ("loss", f"{result.loss:,} (acknowledged - stored)"),
        ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def _counts(counts: dict[Any, int]) -> str:
    if not counts:
        return "none"
    return ", ".join(f"{key}: {n:,}" for key, n in sorted(counts.items(), key=lambda kv: -kv[1]))
