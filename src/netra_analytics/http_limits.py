"""Slow and partial requests time out and free their memory (`ANALYTICS_REQUEST_TIMEOUT_SECONDS`).

uvicorn times out an idle keep-alive connection, but neither a request head nor a body that
stops arriving: a client that declares `Content-Length: 1000000`, sends 999,000 bytes and
waits kept its connection and the bytes read so far (in the route's buffer) for ever. Two
parts close that:

- `BodyLimits`, an ASGI middleware: the whole body must arrive within the timeout, counted
  from the end of the head, else the reply is 408 and the connection is closed, which frees
  what was read. It also bounds the body bytes being held by all requests together
  (`ANALYTICS_MAX_INFLIGHT_BODY_BYTES`): past it, 503 with `retry-after`, so a crowd of slow
  clients cannot take the process's memory either.
- `head_timeout_protocol`: uvicorn's httptools protocol, whose request head (request line and
  headers) must arrive within the timeout of the connection opening or of the previous
  response, else it answers 408 and closes (a connection on which nothing at all arrived is
  closed without a reply). Memory per connection is then bounded by what a client can send in
  that time.

Both answer one line in the log per kind and minute (`logs.RateLimitedLog`): the client's
doing, not ours.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from netra_analytics.logs import RateLimitedLog

log = logging.getLogger(__name__)
client_errors = RateLimitedLog(log)

HEAD_TIMEOUT_REPLY = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)


def _body(error: str, message: str) -> bytes:
    return orjson.dumps({"error": error, "message": message})


class _BodyLimit(Exception):
    status = 408
    error = "RequestTimeout"
    retry_after: str | None = None


class _TooSlow(_BodyLimit):
    pass


class _Overloaded(_BodyLimit):
    status = 503
    error = "Overloaded"
    retry_after = "1"


class BodyLimits:
    """See the module's docstring. `timeout`: seconds for the whole body; `max_inflight_bytes`:
    bytes of bodies read and not yet answered, over all requests."""

    def __init__(self, app: ASGIApp, *, timeout: float, max_inflight_bytes: int) -> None:
        self.app = app
        self.timeout = timeout
        self.max_inflight_bytes = max_inflight_bytes
        self.inflight_bytes = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        held = 0  # this request's body bytes read so far
        started = False
        failed: _BodyLimit | None = None
        body_done = False  # past it, receive() only waits for a disconnect
        # One timer for the whole body, armed at the first receive and cancelled with the last
        # part (an `asyncio.timeout` per receive costs ~5-10 µs each on the hot path). When it
        # fires while the request waits in receive(), it cancels the task there; when it fired
        # while the route was busy between two reads, the next receive() is refused.
        timer: asyncio.TimerHandle | None = None
        waiting: asyncio.Task[Any] | None = None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            if waiting is not None:
                waiting.cancel()

        async def receiving() -> Message:
            nonlocal held, failed, body_done, timer, waiting
            if body_done:  # a streaming reply listening for a disconnect: not a slow body
                return await receive()
            if timer is None:
                timer = loop.call_at(deadline, expire)
            if expired:  # the deadline passed while the route was busy between two reads
                failed = _TooSlow(f"request body not received within {self.timeout:g} s")
                raise failed
            waiting = asyncio.current_task()
            try:
                message = await receive()
            except asyncio.CancelledError:
                if not expired or waiting is None or waiting.uncancel() > 0:
                    raise  # cancelled by someone else too (a disconnect, a shutdown)
                failed = _TooSlow(f"request body not received within {self.timeout:g} s")
                raise failed from None
            finally:
                waiting = None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            if body_done:
                timer.cancel()
            size = len(message.get("body", b""))
            if size and self.inflight_bytes + size > self.max_inflight_bytes:
                failed = _Overloaded("too many request bodies are being received; retry")
                raise failed
            held += size
            self.inflight_bytes += size
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if failed is not None:  # a framework answered for us: still close
                    headers = [*message.get("headers", []), (b"connection", b"close")]
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        except _BodyLimit as exc:
            client_errors.log(
                logging.INFO, exc.error, "request answered %d: %s", exc.status, exc,
                extra={"path": scope.get("path", "")},
            )  # fmt: skip
            if not started:
                await self._reply(send, exc)
        finally:
            if timer is not None:
                timer.cancel()
            self.inflight_bytes -= held
            # The exception's traceback holds the route's frames, and with them the body read
            # so far; `failed` and those frames form a cycle that only the cyclic collector
            # would free, late. Break it: the bytes go now.
            if failed is not None:
                failed.__traceback__ = None
            failed = None

    @staticmethod
    async def _reply(send: Send, exc: _BodyLimit) -> None:
        body = _body(exc.error, str(exc))
        headers = [(b"content-type", b"application/json"), (b"connection", b"close"),
                   (b"content-length", str(len(body)).encode())]  # fmt: skip
        if exc.retry_after is not None:
            headers.append((b"retry-after", exc.retry_after.encode()))
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def head_timeout_protocol(timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with a deadline on each request head (see the module)."""

    class HeadTimeoutProtocol(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None
        _head_begun = False  # has a byte of the awaited head arrived?

        def _arm(self) -> None:
            self._disarm()
            self._head_begun = False
            self._head_timer = self.loop.call_later(timeout, self._head_timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            self._head_begun = True
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request's head

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                self._arm()  # a request is being answered (its body has its own deadline)
                return
            if not self._head_begun:  # idle (a browser's preconnect, say): just close
                self.transport.close()
                return
            client_errors.log(
                logging.INFO, "head timeout", "request head not received within %g s", timeout
            )
            body = _body("RequestTimeout", f"request head not received within {timeout:g} s")
            self.transport.write(HEAD_TIMEOUT_REPLY % (len(body), body))
            self.transport.close()

    return HeadTimeoutProtocol
