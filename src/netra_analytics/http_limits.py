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


CONNECTION_CLOSE = (b"connection", b"close")


class BodyLimitExceeded(Exception):
    """A body not received in time (408) or over the in-flight budget (503)."""

    status = 408
    error = "RequestTimeout"
    retry_after: str | None = None


class _TooSlow(BodyLimitExceeded):
    pass


class _Overloaded(BodyLimitExceeded):
    status = 503
    error = "Overloaded"
    retry_after = "1"


class BodyBudget:
    """The body limits (see the module's docstring) and the bytes held under them by every
    request of a process: shared by `BodyLimits` and the app's hot routes (`app.HotRoutes`),
    which answer in front of the middleware. `timeout`: seconds for the whole body;
    `max_inflight_bytes`: bytes of bodies read and not yet answered, over all requests."""

    def __init__(self, *, timeout: float, max_inflight_bytes: int) -> None:
        self.timeout = timeout
        self.max_inflight_bytes = max_inflight_bytes
        self.inflight_bytes = 0

    def guard(self, receive: Receive) -> BodyGuard:
        """One request's body under the limits: read it through `BodyGuard.receive`."""
        return BodyGuard(self, receive)

    @staticmethod
    async def refuse(scope: Scope, send: Send, exc: BodyLimitExceeded, started: bool) -> None:
        """Logs the refusal and answers it (408 or 503, closing the connection) unless a reply
        has started."""
        client_errors.log(
            logging.INFO, exc.error, "request answered %d: %s", exc.status, exc,
            extra={"path": scope.get("path", "")},
        )  # fmt: skip
        if started:
            return
        body = _body(exc.error, str(exc))
        headers = [(b"content-type", b"application/json"), CONNECTION_CLOSE,
                   (b"content-length", str(len(body)).encode())]  # fmt: skip
        if exc.retry_after is not None:
            headers.append((b"retry-after", exc.retry_after.encode()))
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class BodyGuard:
    """One request's body under a `BodyBudget`: `receive` raises BodyLimitExceeded (a subclass)
    past the deadline or the budget; `failed` holds it then (the reply must close the
    connection); `close()` when the request is done releases its bytes and its timer."""

    def __init__(self, budget: BodyBudget, receive: Receive) -> None:
        self._budget = budget
        self._receive = receive
        self._loop = asyncio.get_running_loop()
        self._deadline = self._loop.time() + budget.timeout
        self._held = 0  # this request's body bytes read so far
        self.failed: BodyLimitExceeded | None = None
        self._body_done = False  # past it, receive() only waits for a disconnect
        # One timer for the whole body, armed at the first receive and cancelled with the last
        # part (an `asyncio.timeout` per receive costs ~5-10 µs each on the hot path). When it
        # fires while the request waits in receive(), it cancels the task there; when it fired
        # while the route was busy between two reads, the next receive() is refused.
        self._timer: asyncio.TimerHandle | None = None
        self._waiting: asyncio.Task[Any] | None = None
        self._expired = False

    def _expire(self) -> None:
        self._expired = True
        if self._waiting is not None:
            self._waiting.cancel()

    def _too_slow(self) -> BodyLimitExceeded:
        self.failed = _TooSlow(f"request body not received within {self._budget.timeout:g} s")
        return self.failed

    async def receive(self) -> Message:
        if self._body_done:  # a streaming reply listening for a disconnect: not a slow body
            return await self._receive()
        if self._timer is None:
            self._timer = self._loop.call_at(self._deadline, self._expire)
        if self._expired:  # the deadline passed while the route was busy between two reads
            raise self._too_slow()
        self._waiting = asyncio.current_task()
        try:
            message = await self._receive()
        except asyncio.CancelledError:
            if not self._expired or self._waiting is None or self._waiting.uncancel() > 0:
                raise  # cancelled by someone else too (a disconnect, a shutdown)
            raise self._too_slow() from None
        finally:
            self._waiting = None
        self._body_done = message["type"] != "http.request" or not message.get("more_body", False)
        if self._body_done:
            self._timer.cancel()
        size = len(message.get("body", b""))
        budget = self._budget
        if size and budget.inflight_bytes + size > budget.max_inflight_bytes:
            self.failed = _Overloaded("too many request bodies are being received; retry")
            raise self.failed
        self._held += size
        budget.inflight_bytes += size
        return message

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._budget.inflight_bytes -= self._held
        self._held = 0
        # The exception's traceback holds the route's frames, and with them the body read so
        # far; `failed` and those frames form a cycle that only the cyclic collector would
        # free, late. Break it: the bytes go now.
        if self.failed is not None:
            self.failed.__traceback__ = None
        self.failed = None


class BodyLimits:
    """See the module's docstring: the middleware over a `BodyBudget` (`budget`, shared with
    the app's hot routes; else one of its own from `timeout` and `max_inflight_bytes`)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        timeout: float | None = None,
        max_inflight_bytes: int | None = None,
        budget: BodyBudget | None = None,
    ) -> None:
        self.app = app
        if budget is None:
            if timeout is None or max_inflight_bytes is None:
                raise TypeError("BodyLimits needs a budget, or timeout and max_inflight_bytes")
            budget = BodyBudget(timeout=timeout, max_inflight_bytes=max_inflight_bytes)
        self.budget = budget

    @property
    def inflight_bytes(self) -> int:
        return self.budget.inflight_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        guard = self.budget.guard(receive)
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if guard.failed is not None:  # a framework answered for us: still close
                    message = {
                        **message,
                        "headers": [*message.get("headers", []), CONNECTION_CLOSE],
                    }
            await send(message)

        try:
            await self.app(scope, guard.receive, sending)
        except BodyLimitExceeded as exc:
            await self.budget.refuse(scope, send, exc, started)
        finally:
            guard.close()


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
