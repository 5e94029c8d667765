"""The running service: the spool, the store, the batch writer, the prompt worker, the live
state and the IP hasher, started and stopped in the right order.

Start: open the spool first (accepting events needs only the disk), then the store; the schema
is migrated in the background if the store is not reachable yet, and the batch writer, the
prompt worker and the funnel walk builder start once it is.

Supervision: each background worker runs under a `Supervisor`, which restarts it with backoff
(0.5 s doubling to 60 s) when it stops on an error, logs the error (with its traceback once per
run of crashes), and reports it: `/health/ready` shows the worker `failing` from the crash
until the restarted worker has run `SETTLE_SECONDS`; a failing writer makes the service not
ready. When the writer has crashed `WRITER_DOWN_CRASHES` times in a row, nothing would store
what ingestion accepts: ingestion answers 503 (`WriterDown`, with `Retry-After`) until a
restarted writer settles.

Store calls of the background workers and of health checks run in pools of their own, each
call within a timeout (`StoreCalls`, `ANALYTICS_STORE_TIMEOUT_SECONDS`): a hung store costs
them threads, never the spool's (`Spool`), so ingestion depends on the disk alone.

Spool directories: the single process uses `spool`; with `ANALYTICS_WORKERS` > 1 each worker
process claims the first free one of `spool`, `spool.1`, ... (`claim_spool`), so a worker killed
with -9 is replaced by one that claims its spool and stores what it acknowledged. Directories
beyond the current count (left by a larger count before) are drained by whoever owns the store
(`drain_extra_spools`: this process when it is the only one, else the engine owner): their
events are stored and analysed as in a worker, then the directory is removed.

Stop, within `ANALYTICS_SHUTDOWN_SECONDS` in all (a quarter of it goes to uvicorn, for open
requests to finish, the rest here): wait for in-flight appends, stop the funnel walk builder
(between two of its queries), stop the prompt worker (it resumes from its spool offset next
time), let the writer flush until the deadline, close the live state and the store. What the
writer could not store stays in the spool for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import shutil
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netra_analytics import metrics
from netra_analytics.config import Settings
from netra_analytics.errors import StoreError
from netra_analytics.ingest.erased import ErasedPeople
from netra_analytics.ingest.spool import Spool, claim_spool, spool_index
from netra_analytics.ingest.writer import BatchWriter, WriterState
from netra_analytics.live import open_live_state
from netra_analytics.live.base import Activity
from netra_analytics.privacy.iphash import IpHasher, load_or_create_secret
from netra_analytics.prompts.cost import PriceTable
from netra_analytics.prompts.similarity import SimilarityIndex
from netra_analytics.prompts.worker import CONSUMER as PROMPTS_CONSUMER
from netra_analytics.prompts.worker import PromptWorker
from netra_analytics.store import Store, open_store
from netra_analytics.store.calls import StoreCalls
from netra_analytics.store.migrations import migrate

if TYPE_CHECKING:
    from netra_analytics.reports.funnel_walks import FunnelWalkBuilder

log = logging.getLogger(__name__)

MAX_PENDING_LIVE_UPDATES = 256
SETTLE_SECONDS = 5.0  # a restarted worker that has run this long is no longer failing
FIRST_RESTART_SECONDS = 0.5
MAX_RESTART_SECONDS = 60.0
WRITER_DOWN_CRASHES = 3  # crashes in a row after which ingestion refuses events (503)
HEALTH_CHECK_SECONDS = 2.0  # a health check's store query without answer fails
UVICORN_SHARE = 0.25  # of the shutdown time, for open requests to finish
RELEASE_SECONDS = 1.0  # segments outside readers (the prompt analysis process) have passed


class Supervisor:
    """Runs a background worker, restarting it with backoff when it stops on an error.

    `start` is called for each run and returns the coroutine to await; a run that returns
    normally ends the supervision (the worker was stopped).
    """

    def __init__(self, name: str, start: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._start = start
        self.crashes = 0  # in a row: reset once a restarted run settles
        self.restarts = 0
        self.last_error: str | None = None
        self.failing_since: float | None = None
        self.next_restart: float | None = None  # monotonic
        self._run_started = 0.0
        self._stopping = False
        self.task: asyncio.Task[None] = asyncio.create_task(self._supervise(), name=name)

    async def _supervise(self) -> None:
        delay = FIRST_RESTART_SECONDS
        while not self._stopping:
            self._run_started = time.monotonic()
            try:
                await self._start()
                return
            except Exception as exc:
                if self._stopping:
                    return
                ran = time.monotonic() - self._run_started
                if ran >= SETTLE_SECONDS:  # it had settled: a new run of crashes begins
                    self.crashes, delay, self.failing_since = 0, FIRST_RESTART_SECONDS, None
                self.crashes += 1
                metrics.WORKER_CRASHES.labels(self.name).inc()
                self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                if self.failing_since is None:
                    self.failing_since = time.time()
                log.error(
                    "background worker %s stopped on an error; restarting in %.1f s",
                    self.name, delay,
                    extra={"worker": self.name, "crashes": self.crashes, "error": self.last_error},
                    exc_info=exc if self.crashes == 1 else None,
                )  # fmt: skip
            self.next_restart = time.monotonic() + delay
            await asyncio.sleep(delay)
            self.next_restart = None
            delay = min(MAX_RESTART_SECONDS, delay * 2)
            self.restarts += 1

    @property
    def failing(self) -> bool:
        if self.failing_since is None:
            return False
        if self.next_restart is None and time.monotonic() - self._run_started >= SETTLE_SECONDS:
            self.failing_since, self.crashes = None, 0  # the restarted run has settled
            return False
        return True

    @property
    def down(self) -> bool:
        """Crashing over and over: nothing it should do gets done."""
        return self.failing and self.crashes >= WRITER_DOWN_CRASHES

    def retry_after(self) -> int:
        """Seconds until the next run can have settled (at least 1)."""
        start = self.next_restart if self.next_restart is not None else self._run_started
        return max(1, math.ceil(start + SETTLE_SECONDS - time.monotonic()))

    def status(self) -> dict[str, Any]:
        failing = self.failing
        return {
            "status": "failing" if failing else "running",
            "restarts": self.restarts,
            "crashes_in_a_row": self.crashes if failing else 0,
            "failing_since": _iso(self.failing_since) if failing else None,
            "last_crash": self.last_error,
        }

    async def stop(self, stop_worker: Callable[[asyncio.Task[None]], Awaitable[None]]) -> None:
        """Stop supervising; `stop_worker(task)` stops a run in progress (bounded by the caller)."""
        self._stopping = True
        if self.next_restart is not None or self.task.done():  # no run to stop
            self.task.cancel()
        else:
            await stop_worker(self.task)
        if not self.task.done():
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def writer_insert_interval(settings: Settings) -> float:
    """Seconds between one writer's inserts: ANALYTICS_MIN_INSERT_INTERVAL_MS is the service's,
    and each of `workers` worker processes has its own writer, so each waits that many times
    it, and ClickHouse still sees about one insert of events per interval (its advice, see
    `Settings.min_insert_interval_ms`)."""
    share = settings.workers if settings.worker_process else 1
    return settings.min_insert_interval_ms / 1000 * max(1, share)


class Service:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
        spool_dir: Path | None = None,
    ) -> None:
        """`store`: an already open store to use (and leave open), as in-process tests do;
        `clock`: the wall clock (seconds) for receive times, rate windows and live metrics;
        `spool_dir`: a spool directory to store and analyse (`drain_spool`) instead of this
        process's own."""
        self.settings = settings
        self.clock = clock
        self.live = open_live_state(settings)
        self._live_updates: set[asyncio.Task[None]] = set()
        self._own_store = store is None
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Keys the IP hashes and, under its own label, the person hashes of privacy operations.
        self.secret = load_or_create_secret(settings.ip_hash_secret, settings.data_dir)
        self.hash_ip = IpHasher(self.secret)
        self.erased: ErasedPeople | None = None  # with the store
        if spool_dir is not None:
            self.spool = Spool(spool_dir, max_bytes=settings.spool_max_bytes)
        elif settings.worker_process:
            # Its prompts are analysed in the prompt analysis process (`prompt_process`).
            self.spool = claim_spool(
                settings.data_dir, settings.workers, max_bytes=settings.spool_max_bytes,
                outside_readers=(PROMPTS_CONSUMER,),
            )  # fmt: skip
        else:
            self.spool = Spool(settings.data_dir / "spool", max_bytes=settings.spool_max_bytes)
        # The only process of the data directory drains the spools a larger worker count left.
        self._drains_extra = spool_dir is None and not settings.worker_process
        self._drain_task: asyncio.Task[None] | None = None
        self._release_task: asyncio.Task[None] | None = None
        self.store: Store | None = store
        timeout = settings.store_timeout_seconds
        # One thread each: a worker's calls are sequential, and a call that timed out must end
        # before the next one starts (the writer's in-flight file, the analyser's state).
        self.writer_calls = StoreCalls("store-writer", workers=1, timeout=timeout)
        self.background_calls = StoreCalls("store-background", workers=1, timeout=timeout)
        self.health_calls = StoreCalls("store-health", workers=1, timeout=HEALTH_CHECK_SECONDS)
        self.schema_ready = asyncio.Event()
        self.writer: BatchWriter | None = None
        self.writer_state = WriterState()
        self.prices = PriceTable.load(settings.model_prices_file)
        self.prompts: PromptWorker | None = None
        self.funnel_walks: FunnelWalkBuilder | None = None
        self.supervisors: dict[str, Supervisor] = {}
        self._start_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.store is None:
            self.store = await asyncio.to_thread(open_store, self.settings)
        self.erased = ErasedPeople(self.store, self.secret)
        try:
            # Bounded: a hung store must not hold the start of ingestion.
            await self._migrate(self.settings.store_timeout_seconds)
        except StoreError as exc:
            log.warning("store not ready at start-up; will retry", extra={"error": str(exc)})
            self._start_task = asyncio.create_task(self._migrate_until_ready())
        else:
            self._start_workers()

    async def _migrate(self, timeout: float = 24 * 3600.0) -> None:
        """Migrate in the background pool. In the background the wait is long: a migration of
        a large table may take minutes (a hung store holds that pool's thread, never the
        spool's), and the pool's one thread keeps a retry from running beside it."""
        assert self.store is not None
        applied = await self.background_calls.run(
            migrate, self.store, self.settings.clickhouse_cluster, timeout=timeout
        )
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
            self._start_workers()
            return

    def _start_workers(self) -> None:
        self.supervisors["writer"] = Supervisor("writer", self._run_writer)
        if not self.settings.worker_process:
            self.supervisors["prompts"] = Supervisor("prompts", self._run_prompts)
        if self.settings.funnel_walk_days:
            self.supervisors["funnel_walks"] = Supervisor("funnel_walks", self._run_funnel_walks)
        if self.spool.outside_readers:
            self._release_task = asyncio.create_task(self._release_read_segments())
        if self._drains_extra and self.store is not None:
            self._drain_task = asyncio.create_task(
                drain_extra_spools(self.settings, self.store, keep=1, clock=self.clock)
            )

    async def _release_read_segments(self) -> None:
        while True:
            await asyncio.sleep(RELEASE_SECONDS)
            try:
                self.spool.release_read_segments()
            except OSError as exc:  # the next second tries again
                log.warning("spool segments not released", extra={"error": str(exc)[:300]})

    async def _run_writer(self) -> None:
        assert self.store is not None
        self.writer = BatchWriter(
            self.spool,
            self.store,
            batch_size=self.settings.event_batch_size,
            flush_interval=self.settings.event_flush_interval_ms / 1000,
            min_insert_interval=writer_insert_interval(self.settings),
            calls=self.writer_calls,
            state=self.writer_state,
            erased=self.erased,
        )
        await self.writer.run()

    async def _run_prompts(self) -> None:
        assert self.store is not None
        self.prompts = PromptWorker(
            self.spool, self.store, prices=self.prices, calls=self.background_calls,
            clock=self.clock, index=similarity_index(self.settings), erased=self.erased,
            thread_cache_bytes=self.settings.prompt_thread_cache_bytes,
        )  # fmt: skip
        await self.prompts.run()

    async def _run_funnel_walks(self) -> None:
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
        await self.funnel_walks.run()

    def writer_down(self) -> Supervisor | None:
        """The writer's supervisor when the writer keeps crashing (ingestion must refuse)."""
        supervisor = self.supervisors.get("writer")
        return supervisor if supervisor is not None and supervisor.down else None

    def record_activity(self, activity: Activity) -> None:
        """Update the live state off the request path (at once where that needs no coroutine:
        `LiveStateGuard.record_nowait`); skipped (and counted) under overload."""
        if self.live.record_nowait(activity):
            return
        if len(self._live_updates) >= MAX_PENDING_LIVE_UPDATES:
            metrics.LIVE_UPDATES_DROPPED.inc()
            return
        task = asyncio.create_task(self.live.record(activity))
        self._live_updates.add(task)
        task.add_done_callback(self._live_updates.discard)

    async def stop(self, budget: float | None = None) -> None:
        """Stop everything within `budget` seconds (default: this process's share of
        `ANALYTICS_SHUTDOWN_SECONDS`); the writer gets what the other steps leave."""
        if budget is None:
            budget = self.settings.shutdown_seconds * (1 - UVICORN_SHARE)
        deadline = time.monotonic() + budget

        def left(reserve: float = 0.0) -> float:
            return max(0.1, deadline - time.monotonic() - reserve)

        for task in (self._start_task, self._drain_task, self._release_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.spool.wait_flushed(), left())
        await self._stop_worker("funnel_walks", self.funnel_walks, min(5.0, left(3)))
        await self._stop_worker("prompts", self.prompts, min(5.0, left(3)))
        writer = self.supervisors.get("writer")
        if writer is not None:

            async def stop_writer(task: asyncio.Task[None]) -> None:
                if self.writer is not None:
                    await self.writer.stop(task, left(3))

            await writer.stop(stop_writer)
            log.info(
                "writer stopped",
                extra={"events_written": self.writer_state.events_written,
                       "spool_backlog_bytes": self.spool.durable_end - self.spool.checkpoint},
            )  # fmt: skip
        self.spool.close()
        if self._live_updates:
            await asyncio.wait(self._live_updates, timeout=min(2.0, left(1)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.live.close(), min(2.0, left(0.5)))
        for calls in (self.writer_calls, self.background_calls, self.health_calls):
            calls.close()
        if self.store is not None and self._own_store:
            # A daemon thread: closing a client whose server hangs must not hold the exit.
            closing = StoreCalls("store-close", workers=1, timeout=left())
            with contextlib.suppress(Exception):
                await closing.run(self.store.close)

    async def _stop_worker(self, name: str, worker: Any, timeout: float) -> None:
        supervisor = self.supervisors.get(name)
        if supervisor is None:
            return

        async def stop(task: asyncio.Task[None]) -> None:
            if worker is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(worker.stop(task), timeout)

        await supervisor.stop(stop)


def similarity_index(settings: Settings) -> SimilarityIndex:
    """An empty near-duplicate index within `ANALYTICS_SIMILARITY_MAX_PROMPTS` and
    `ANALYTICS_SIMILARITY_MAX_AGE_DAYS`, for a prompt worker."""
    return SimilarityIndex(
        max_texts=settings.similarity_max_prompts,
        max_age_ms=settings.similarity_max_age_days * 86_400_000,
    )


def extra_spools(data_dir: Path, keep: int) -> list[Path]:
    """Spool directories of worker indexes `keep` and above, in order (`spool_directory`)."""
    found = [(spool_index(p), p) for p in data_dir.glob("spool*") if p.is_dir()]
    return [p for index, p in sorted((i, p) for i, p in found if i is not None) if index >= keep]


async def drain_extra_spools(
    settings: Settings, store: Store, *, keep: int, clock: Callable[[], float] = time.time
) -> None:
    """Store and analyse what every spool directory beyond the first `keep` holds, one after
    another, and remove each once empty (`drain_spool`). Cancelled: stops where it is (the rest
    waits for the next start)."""
    for directory in extra_spools(settings.data_dir, keep):
        try:
            await drain_spool(settings, store, directory, clock=clock)
        except Exception as exc:  # the next start tries again; the events stay on disk
            log.error("could not drain %s", directory, extra={"error": str(exc)[:300]})


async def drain_spool(
    settings: Settings, store: Store, directory: Path, *, clock: Callable[[], float] = time.time
) -> bool:
    """Store what the spool in `directory` holds, with its prompt analysis, as a worker would
    have (a `Service` on that spool, without ingestion), then remove the directory. Returns
    whether it was removed (not when cancelled, or when it keeps quarantined records)."""
    quiet = dataclasses.replace(
        settings, funnel_walk_days=0, worker_process=False, live_socket=None, redis_url=None
    )
    drain = Service(quiet, store=store, clock=clock, spool_dir=directory)
    spool = drain.spool
    log.info("storing the events of a spool no worker claims", extra={"spool": str(directory),
             "backlog_bytes": spool.backlog_bytes})  # fmt: skip
    done = False
    try:
        await drain.start()
        while not done:
            done = (
                spool.checkpoint >= spool.durable_end
                and spool.consumer_offset(PROMPTS_CONSUMER) >= spool.durable_end
            )
            if not done:
                await asyncio.sleep(0.2)
    finally:
        await asyncio.shield(drain.stop(budget=5.0 if done else 2.0))
    if spool.quarantined:
        log.warning("a drained spool is kept for its quarantined records",
                    extra={"spool": str(directory)})  # fmt: skip
        return False
    shutil.rmtree(directory, ignore_errors=True)
    log.info("drained and removed a spool", extra={"spool": str(directory)})
    return True
