"""Blocking store calls off the event loop: a bounded pool of their own, a timeout on each, and
an outage logged once, then periodically.

Why a pool of its own: a store that accepts connections and never answers holds every thread
that calls it. Sharing asyncio's default pool with the spool's fsync (as before) let a few
hung health probes stop ingestion. Each `StoreCalls` has `workers` threads and never queues
more calls than it has threads: a caller waits at most `timeout` seconds in all (for a thread,
then for the answer) and gets `StoreUnavailable`. The thread of a call that timed out stays busy
until the store's client gives up (its socket timeout), so a hung store costs at most `workers`
threads per pool.

The threads are daemon threads: `concurrent.futures` joins its workers at exit, so a call the
store never answers would hold the process past its shutdown deadline.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from netra_analytics.errors import StoreUnavailable

T = TypeVar("T")

_Job = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class StoreCalls:
    def __init__(self, name: str, *, workers: int, timeout: float) -> None:
        """`name`: the pool's name (its threads', and in errors); `timeout`: seconds per call."""
        self.name = name
        self.workers = workers
        self.timeout = timeout
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._busy = 0  # calls handed to a thread and not yet finished (touched on the loop only)
        self._freed: asyncio.Event | None = None

    @property
    def busy(self) -> int:
        """Threads working on a call now (those of timed-out calls included)."""
        return self._busy

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        timeout: float | None = None,
        wait_for_thread: bool = True,
    ) -> T:
        """`fn(*args)` in one of the pool's threads; its result, or its exception.

        Raises `StoreUnavailable` when no answer came within `timeout` (default: the pool's), or
        at once when every thread is busy and `wait_for_thread` is false (a health probe must
        not wait behind a hung one).
        """
        loop = asyncio.get_running_loop()
        limit = self.timeout if timeout is None else timeout
        deadline = loop.time() + limit
        if self._freed is None:
            self._freed = asyncio.Event()
        while self._busy >= self.workers:
            if not wait_for_thread or loop.time() >= deadline:
                raise StoreUnavailable(
                    f"{self.name}: every one of {self.workers} store calls is still waiting "
                    "for an answer"
                )
            self._freed.clear()
            try:
                await asyncio.wait_for(self._freed.wait(), deadline - loop.time())
            except TimeoutError:
                continue
        self._start_thread()
        future: asyncio.Future[T] = loop.create_future()
        self._busy += 1
        self._jobs.put((fn, args, loop, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise StoreUnavailable(
                f"{self.name}: no answer from the store within {limit:g} s"
            ) from None

    def _start_thread(self) -> None:
        if len(self._threads) < min(self._busy + 1, self.workers):
            thread = threading.Thread(
                target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, args, loop, future = job
            try:
                outcome: tuple[Any, BaseException | None] = (fn(*args), None)
            except BaseException as exc:  # handed to the caller, whatever it is
                outcome = (None, exc)
            try:
                loop.call_soon_threadsafe(self._settle, future, outcome)
            except RuntimeError:  # the loop is closed: nobody waits any more
                return

    def _settle(
        self, future: asyncio.Future[Any], outcome: tuple[Any, BaseException | None]
    ) -> None:
        self._busy -= 1
        if self._freed is not None:
            self._freed.set()
        if future.done():  # the caller was cancelled
            return
        result, error = outcome
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def close(self) -> None:
        """Let idle threads end (busy ones end with their call; they never block exit)."""
        for _ in self._threads:
            self._jobs.put(None)
        self._threads.clear()


class OutageLog:
    """Logs a run of failures once when it starts, then at most once per `interval` seconds with
    how many failed meanwhile, and once when it ends: an outage costs a few lines, however many
    attempts it sees."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log, self._what, self._interval, self._clock = logger, what, interval, clock
        self.failures = 0  # in the current run
        self._since: float | None = None
        self._last_logged = 0.0
        self._unlogged = 0

    def failed(self, error: str, **extra: Any) -> None:
        now = self._clock()
        self.failures += 1
        self._unlogged += 1
        if self._since is None:
            self._since = now
        elif now - self._last_logged < self._interval:
            return
        self._log.warning(
            "%s failed; retrying with backoff", self._what,
            extra={"error": error, "failures": self.failures, "failures_since_last_line":
                   self._unlogged, "seconds": round(now - self._since, 1), **extra},
        )  # fmt: skip
        self._last_logged, self._unlogged = now, 0

    def succeeded(self) -> None:
        if self._since is None:
            return
        self._log.info(
            "%s works again", self._what,
            extra={"failures": self.failures, "seconds": round(self._clock() - self._since, 1)},
        )  # fmt: skip
        self.failures, self._since, self._unlogged = 0, None, 0
