"""A paced (open-loop) load of realistic requests, and accepted-to-visible probes beside it.

wrk sends as fast as the server answers, so its latency is that of a saturated server. To
read the latency at a given rate, requests must leave on a schedule whatever the replies
do: request i is due at `start + i / requests_per_s`, and its latency counts from that
moment, not from when a connection was free to send it (otherwise a stall hides the
requests it delayed: "coordinated omission"). A dispatcher queues each request when it is
due; `connections` keep-alive connections take them in turn. HTTP/1.1 is spoken directly
on asyncio streams (a request is one write, a reply one header read and one body read), so
that the client costs little of the shared CPU.

Every request is its own user and session with a browser's user agent (`realistic_body`).
Probes: every `probe_every_s`, a chat event of a fresh user and session is posted; once it
is answered 202, the live session (`/api/analytics/reports/sessions/{id}`, written by the
same live-state update as the engagement report's counters) is read every 2 ms until it
answers 200: the time from the 202 to then is the event's accepted-to-visible time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.common import percentile

# Real browsers' user agents (Chrome, Safari, Firefox and Edge on desktop and phones, 2024-25):
# none of them is on the bot list, so every event counts.
BROWSER_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:132.0) Gecko/20100101 Firefox/132.0",
)
# The site the tag runs on: its requests to the service are cross-origin, so browsers send it.
SITE_ORIGIN = "https://app.example.com"
USER_MARKER = b"__USER__"
SESSION_MARKER = b"__SESSION__"
EVENTS_PATH = "/api/analytics/events"
_ACCEPTED = re.compile(rb'"accepted":(\d+)')


def realistic_bodies(events_per_request: int) -> list[bytes]:
    """Request bodies with USER_MARKER and SESSION_MARKER where each request's own user and
    session ids go: one 20-event batch (a chat turn, its thread, features, timings: every
    event type) for 20, else one body per event type (what a hidden page sends) in turn."""
    from tests.factories import EXAMPLES

    kinds = list(EXAMPLES)
    context = {"user_id": USER_MARKER.decode(), "session_id": SESSION_MARKER.decode(),
               "page_path": "/chat"}  # fmt: skip
    if events_per_request == 1:
        return [
            orjson.dumps(
                {"events": [{"event_type": k, "properties": EXAMPLES[k]}], "context": context}
            )
            for k in kinds
        ]
    events = [
        {"event_type": kinds[i % len(kinds)], "properties": EXAMPLES[kinds[i % len(kinds)]]}
        for i in range(events_per_request)
    ]
    return [orjson.dumps({"events": events, "context": context})]


@dataclass
class PacedResult:
    scheduled: int = 0
    ok: int = 0  # 2xx replies
    accepted_events: int = 0  # the replies' "accepted" counts
    statuses: dict[int, int] = field(default_factory=dict)  # non-2xx replies by status
    errors: int = 0  # connections that failed
    latencies_s: list[float] = field(default_factory=list)
    visible_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    def summary(self, events_per_request: int) -> dict[str, Any]:
        lat = self.latencies_s or [float("nan")]
        vis = self.visible_s or [float("nan")]
        return {
            "requests_scheduled": self.scheduled,
            "ok_requests": self.ok,
            "acknowledged": self.accepted_events,
            "non_2xx": dict(self.statuses),
            "errors": self.errors,
            "events_per_s": self.ok * events_per_request / max(self.elapsed_s, 1e-9),
            "p50_ms": 1000 * percentile(lat, 0.5),
            "p95_ms": 1000 * percentile(lat, 0.95),
            "p99_ms": 1000 * percentile(lat, 0.99),
            "max_ms": 1000 * max(lat),
            "visible_probes": len(self.visible_s),
            "visible_p50_ms": 1000 * percentile(vis, 0.5),
            "visible_p99_ms": 1000 * percentile(vis, 0.99),
        }


class _Connection:
    """One keep-alive HTTP/1.1 connection (reopened after an error)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        try:
            self.writer.write(head + body)
            header = await self.reader.readuntil(b"\r\n\r\n")
            status = int(header[9:12])
            match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", header)
            reply = await self.reader.readexactly(int(match.group(1))) if match else b""
            return status, reply
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _post_head(host: str, length: int, user_agent: str) -> bytes:
    return (
        f"POST {EVENTS_PATH} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        f"origin: {SITE_ORIGIN}\r\n"
        f"user-agent: {user_agent}\r\ncontent-length: {length}\r\n\r\n"
    ).encode()


async def paced_load(
    url: str,
    *,
    events_per_s: float,
    seconds: float,
    events_per_request: int,
    connections: int = 64,
    probe_every_s: float = 0.3,
    headers: dict[str, str] | None = None,
    run_id: str = "",
) -> PacedResult:
    """Send `events_per_s` for `seconds` (see the module), probing visibility meanwhile.
    `headers`: sent with the probes' reads (an admin credential); `run_id`: makes this run's
    user and session ids differ from every other run's."""
    host, port = url.removeprefix("http://").split(":")
    bodies = realistic_bodies(events_per_request)
    requests_per_s = events_per_s / events_per_request
    total = int(requests_per_s * seconds)
    result = PacedResult(scheduled=total)
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    counter = itertools.count()

    async def worker() -> None:
        conn = _Connection(host, int(port))
        while (item := await queue.get()) is not None:
            n, due = item
            ident = f"{run_id}-{n}".encode()
            body = (
                bodies[n % len(bodies)]
                .replace(USER_MARKER, b"u" + ident)
                .replace(SESSION_MARKER, b"s" + ident)
            )
            head = _post_head(host, len(body), BROWSER_USER_AGENTS[n % len(BROWSER_USER_AGENTS)])
            try:
                status, reply = await conn.request(head, body)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                result.errors += 1
                continue
            result.latencies_s.append(time.perf_counter() - due)
            if 200 <= status < 300:
                result.ok += 1
                accepted = _ACCEPTED.search(reply)
                result.accepted_events += int(accepted.group(1)) if accepted else 0
            else:
                result.statuses[status] = result.statuses.get(status, 0) + 1
        conn.close()

    async def probe(stop: asyncio.Event) -> None:
        conn = _Connection(host, int(port))
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        while not stop.is_set():
            n = next(counter)
            session = f"probe-{run_id}-{n}"
            text = "how do I compare model costs"
            body = orjson.dumps({
                "events": [{"event_type": "chat_interaction", "properties": {
                    "thread_id": "probe", "message_id": f"m{n}", "message_type": "user_prompt",
                    "prompt_text": text, "prompt_length": len(text), "is_follow_up": False}}],
                "context": {"user_id": f"probe-{run_id}-{n}", "session_id": session},
            })  # fmt: skip
            status, _ = await conn.request(
                _post_head(host, len(body), BROWSER_USER_AGENTS[0]), body
            )
            if status == 202:
                accepted = time.perf_counter()
                get = (
                    f"GET /api/analytics/reports/sessions/{session} HTTP/1.1\r\nhost: {host}\r\n"
                    f"{extra}\r\n"
                ).encode()
                while True:  # one not visible within 5 s counts as 5 s, so none is dropped
                    found, _ = await conn.request(get, b"")
                    waited = time.perf_counter() - accepted
                    if found == 200 or waited > 5:
                        result.visible_s.append(min(waited, 5.0))
                        break
                    await asyncio.sleep(0.002)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), probe_every_s)
        conn.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    stop = asyncio.Event()
    prober = asyncio.create_task(probe(stop)) if probe_every_s > 0 else None
    started = time.perf_counter()
    sent = 0
    while sent < total:
        due_now = min(total, int((time.perf_counter() - started) * requests_per_s) + 1)
        for n in range(sent, due_now):
            queue.put_nowait((n, started + n / requests_per_s))
        sent = due_now
        await asyncio.sleep(0.001)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    result.elapsed_s = time.perf_counter() - started
    stop.set()
    if prober is not None:
        await prober
    return result


def run_paced(url: str, **kwargs: Any) -> PacedResult:
    """`paced_load` on a fresh uvloop event loop."""
    import uvloop

    result: PacedResult = uvloop.run(paced_load(url, **kwargs))
    return result
