"""The running service: the spool, the store, the batch writer, the prompt worker, the live
state and the IP hasher, started and stopped in the right order.

Start: open the spool first (accepting events needs only the disk), then the store; the schema
is migrated in the background if the store is not reachable yet, and the batch writer, the
prompt worker and the funnel walk builder start once it is. Stop: wait for in-flight appends,
stop the funnel walk builder (between two of its queries), stop the prompt worker (it resumes
from its spool offset next time), let the writer flush (bounded), close the live state and the
store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from netra_analytics import metrics
from netra_analytics.config import Settings
from netra_analytics.errors import StoreError
from netra_analytics.ingest.spool import Spool
from netra_analytics.ingest.writer import BatchWriter
from netra_analytics.live import open_live_state
from netra_analytics.live.base import Activity
from netra_analytics.privacy.iphash import IpHasher, load_or_create_secret
from netra_analytics.prompts.cost import PriceTable
from netra_analytics.prompts.similarity import SimilarityIndex
from netra_analytics.prompts.worker import PromptWorker
from netra_analytics.store import Store, open_store
from netra_analytics.store.migrations import migrate

if TYPE_CHECKING:
    from netra_analytics.reports.funnel_walks import FunnelWalkBuilder

log = logging.getLogger(__name__)

SHUTDOWN_FLUSH_SECONDS = 20.0
MAX_PENDING_LIVE_UPDATES = 256


class Service:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`store`: an already open store to use (and leave open), as in-process tests do;
        `clock`: the wall clock (seconds) for receive times, rate windows and live metrics."""
        self.settings = settings
        self.clock = clock
        self.live = open_live_state(settings)
        self._live_updates: set[asyncio.Task[None]] = set()
        self._own_store = store is None
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.hash_ip = IpHasher(load_or_create_secret(settings.ip_hash_secret, settings.data_dir))
        self.spool = Spool(settings.data_dir / "spool", max_bytes=settings.spool_max_bytes)
        self.store: Store | None = store
        self.schema_ready = asyncio.Event()
        self.writer: BatchWriter | None = None
        self.prices = PriceTable.load(settings.model_prices_file)
        self.prompts: PromptWorker | None = None
        self._prompts_task: asyncio.Task[None] | None = None
        self.funnel_walks: FunnelWalkBuilder | None = None
        self._funnel_walks_task: asyncio.Task[None] | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self._start_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.store is None:
            self.store = await asyncio.to_thread(open_store, self.settings)
        try:
            await self._migrate()
        except StoreError as exc:
            log.warning("store not ready at start-up; will retry", extra={"error": str(exc)})
            self._start_task = asyncio.create_task(self._migrate_until_ready())
        else:
            self._start_writer()

    async def _migrate(self) -> None:
        assert self.store is not None
        applied = await asyncio.to_thread(migrate, self.store, self.settings.clickhouse_cluster)
        if applied:
            log.info("migrations applied", extra={"migrations": applied})
        self.schema_ready.set()

    async def _migrate_until_ready(self) -> None:
        delay = 0.5
        while True:
            await asyncio.sleep(delay)
            try:
                await self._migrate()
            except StoreError:
                delay = min(delay * 2, 30.0)
                continue
            self._start_writer()
            return

    def _start_writer(self) -> None:
        assert self.store is not None
        self.writer = BatchWriter(
            self.spool,
            self.store,
            batch_size=self.settings.event_batch_size,
            flush_interval=self.settings.event_flush_interval_ms / 1000,
        )
        self._writer_task = asyncio.create_task(self.writer.run())
        self._writer_task.add_done_callback(_report_crash)
        index = SimilarityIndex(
            max_texts=self.settings.similarity_max_prompts,
            max_age_ms=self.settings.similarity_max_age_days * 86_400_000,
        )
        self.prompts = PromptWorker(self.spool, self.store, prices=self.prices, index=index)
        self._prompts_task = asyncio.create_task(self.prompts.run())
        self._prompts_task.add_done_callback(_report_crash)
        if self.settings.funnel_walk_days:
            self._start_funnel_walks()

    def _start_funnel_walks(self) -> None:
        # Imported here: the reports import this module.
        from netra_analytics.reports.funnel_walks import FunnelWalkBuilder
        from netra_analytics.reports.funnels import load_funnels

        assert self.store is not None
        self.funnel_walks = FunnelWalkBuilder(
            self.store,
            lambda: load_funnels(self.settings.funnels_file),
            self.clock,
            self.settings.funnel_walk_days,
        )
        self._funnel_walks_task = asyncio.create_task(self.funnel_walks.run())
        self._funnel_walks_task.add_done_callback(_report_crash)

    def record_activity(self, activity: Activity) -> None:
        """Update the live state off the request path; skipped (and counted) under overload."""
        if len(self._live_updates) >= MAX_PENDING_LIVE_UPDATES:
            metrics.LIVE_UPDATES_DROPPED.inc()
            return
        task = asyncio.create_task(self.live.record(activity))
        self._live_updates.add(task)
        task.add_done_callback(self._live_updates.discard)

    async def stop(self) -> None:
        if self._start_task is not None:
            self._start_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._start_task
        await self.spool.wait_flushed()
        if self.funnel_walks is not None and self._funnel_walks_task is not None:
            await self.funnel_walks.stop(self._funnel_walks_task)
        if self.prompts is not None and self._prompts_task is not None:
            await self.prompts.stop(self._prompts_task)
        if self.writer is not None and self._writer_task is not None:
            await self.writer.stop(self._writer_task, SHUTDOWN_FLUSH_SECONDS)
            log.info(
                "writer stopped",
                extra={"events_written": self.writer.state.events_written,
                       "spool_backlog_bytes": self.spool.durable_end - self.spool.checkpoint},
            )  # fmt: skip
        self.spool.close()
        if self._live_updates:
            await asyncio.wait(self._live_updates, timeout=2)
        await self.live.close()
        if self.store is not None and self._own_store:
            await asyncio.to_thread(self.store.close)


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a background worker stopped on an error", exc_info=task.exception())
