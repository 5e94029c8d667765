"""`BodyLimits` on plain ASGI calls (the real-server tests are in test_slow_clients.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from netra_analytics.http_limits import BodyLimits

SCOPE = {"type": "http", "method": "POST", "path": "/x", "headers": []}


def _run(
    app: Any, messages: list[tuple[float, Message]], **limits: Any
) -> tuple[list[Message], BodyLimits]:
    sent: list[Message] = []
    queue = list(messages)

    async def receive() -> Message:
        delay, message = queue.pop(0) if queue else (3600.0, {"type": "http.disconnect"})
        await asyncio.sleep(delay)
        return message

    async def send(message: Message) -> None:
        sent.append(message)

    middleware = BodyLimits(app, **{"timeout": 0.2, "max_inflight_bytes": 1 << 20, **limits})
    asyncio.run(middleware(SCOPE, receive, send))
    return sent, middleware


async def _reader(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 202, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_a_body_that_stops_arriving_is_a_408_that_closes() -> None:
    sent, limits = _run(
        _reader, [(0, {"type": "http.request", "body": b"x" * 1000, "more_body": True})]
    )
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    assert limits.inflight_bytes == 0  # released with the request


def test_waiting_for_a_disconnect_after_the_body_is_not_a_timeout() -> None:
    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # the whole body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        assert (await receive())["type"] == "http.disconnect"  # after the deadline
        await send({"type": "http.response.body", "body": b"done"})

    sent, _ = _run(streaming, [(0, {"type": "http.request", "body": b"{}", "more_body": False}),
                               (0.4, {"type": "http.disconnect"})])  # fmt: skip
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"done"


def test_bodies_past_the_in_flight_bound_are_a_503_and_released() -> None:
    chunk = {"type": "http.request", "body": b"x" * 600_000, "more_body": True}
    sent, limits = _run(_reader, [(0, chunk), (0, chunk)], max_inflight_bytes=1 << 20)
    assert sent[0]["status"] == 503 and (b"retry-after", b"1") in sent[0]["headers"]
    assert limits.inflight_bytes == 0


def test_a_whole_body_in_time_passes_untouched() -> None:
    sent, limits = _run(_reader, [(0, {"type": "http.request", "body": b"{}", "more_body": True}),
                                  (0.05, {"type": "http.request", "body": b"", "more_body": False})])  # fmt: skip
    assert sent[0]["status"] == 202 and sent[1]["body"] == b"ok" and limits.inflight_bytes == 0


def test_a_deadline_passed_between_two_reads_refuses_the_next_one() -> None:
    async def slow_route(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # a first part, in time
        await asyncio.sleep(0.3)  # busy past the deadline (0.2 s), not waiting for the body
        await receive()
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent, limits = _run(slow_route, [(0, {"type": "http.request", "body": b"{", "more_body": True}),
                                     (0, {"type": "http.request", "body": b"}", "more_body": False})])  # fmt: skip
    assert sent[0]["status"] == 408 and limits.inflight_bytes == 0


def test_a_request_cancelled_by_others_while_reading_stays_cancelled() -> None:
    """Not a slow body: a cancellation that is not the deadline's goes on, as it came."""
    outcome: list[str] = []

    async def main() -> None:
        async def receive() -> Message:
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            outcome.append(str(message.get("status")))

        middleware = BodyLimits(_reader, timeout=5, max_inflight_bytes=1 << 20)
        task = asyncio.create_task(middleware(SCOPE, receive, send))
        await asyncio.sleep(0.05)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            outcome.append("cancelled")

    asyncio.run(main())
    assert outcome == ["cancelled"]
