"""Report queries within bounds: a time and a memory limit on every statement, run on their own
few threads.

Every SELECT a report sends carries `SETTINGS max_execution_time, max_memory_usage` (ClickHouse
stops it and answers TIMEOUT_EXCEEDED or MEMORY_LIMIT_EXCEEDED), which becomes `QueryLimit`,
a 503 naming the bound. The queries run on a pool of `concurrency` threads of their own, so
however many reports are asked for at once, ingestion's spool writes and the batch writer keep
the default executor's threads; a report that waits longer than the time bound for a thread is
refused with 503 too. (Embedded chDB runs one statement at a time whatever the threads: a slow
report then delays the writer's next insert by at most the time bound, while ingestion, which
answers once events are in the spool, does not wait for it.)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from netra_analytics.errors import QueryLimit, StoreError
from netra_analytics.store.base import Params, Store, settings_clause

T = TypeVar("T")

# ClickHouse's error codes for a query stopped at a bound: TIMEOUT_EXCEEDED,
# MEMORY_LIMIT_EXCEEDED, TOO_SLOW (the estimate says it would exceed max_execution_time).
_STOPPED = re.compile(
    r"\b(TIMEOUT_EXCEEDED|MEMORY_LIMIT_EXCEEDED|TOO_SLOW)\b|Code: (159|241|160)\."
)


class BoundedStore:
    """A Store whose SELECTs carry the bounds; everything else goes to `store` as it is."""

    def __init__(self, store: Store, *, seconds: int, memory_bytes: int) -> None:
        self._store = store
        self.seconds, self.memory_bytes = seconds, memory_bytes
        # After a newline: the last line of a statement may be a comment.
        self._settings = (
            "\n"
            + settings_clause(
                {"max_execution_time": str(seconds), "max_memory_usage": str(memory_bytes)}
            ).strip()
        )

    @property
    def description(self) -> str:
        return self._store.description

    def query_rows(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        try:
            return self._store.query_rows(sql.rstrip().rstrip(";") + self._settings, params)
        except StoreError as exc:
            if _STOPPED.search(str(exc)):
                raise QueryLimit(self._bound_message(str(exc))) from exc
            raise

    def _bound_message(self, detail: str) -> str:
        if "MEMORY" in detail or "Code: 241." in detail:
            return (f"the report needed more than its memory bound ({self.memory_bytes} bytes, "
                    "ANALYTICS_REPORT_MAX_MEMORY_BYTES); ask for a shorter range")  # fmt: skip
        return (f"the report ran past its time bound ({self.seconds} s, "
                "ANALYTICS_REPORT_TIMEOUT_SECONDS); ask for a shorter range")  # fmt: skip

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class ReportRunner:
    """Runs report work (functions that query a BoundedStore) on `concurrency` threads."""

    def __init__(self, store: Store, *, seconds: int, memory_bytes: int, concurrency: int) -> None:
        self.store = BoundedStore(store, seconds=seconds, memory_bytes=memory_bytes)
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="report")
        self._slots = concurrency
        self._waiting: asyncio.Semaphore | None = None

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` on a report thread; QueryLimit (503) when no thread is free within
        the time bound."""
        if self._waiting is None:  # made on the event loop that uses it
            self._waiting = asyncio.Semaphore(self._slots)
        try:
            await asyncio.wait_for(self._waiting.acquire(), self.store.seconds)
        except TimeoutError:
            raise QueryLimit(
                f"too many reports are running; none finished within {self.store.seconds} s "
                "(ANALYTICS_REPORT_CONCURRENCY at a time); try again shortly"
            ) from None
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)
        finally:
            self._waiting.release()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
