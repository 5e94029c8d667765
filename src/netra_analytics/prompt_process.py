"""Prompt analysis in a process of its own, beside the HTTP workers (`ANALYTICS_WORKERS` > 1).

The analysis (classifier, similarity, scores) is CPU-bound Python. In a worker process it
shares the interpreter with the request handlers, and every time the event loop gives the
interpreter up (a socket call, a spool write) it waits up to the switch interval to get it
back while the analysis runs: measured on 2 cores at a steady 10,000 events/s, request p99
86-97 ms with the analysis in the workers, 21 ms without it, and 24 ms with a process at
nice 10 burning 30 % of a core beside them; 29-34 ms with this process (bench/README,
"Third pass").

So with several workers, the engine owner starts this process (and starts it again when it
dies): at the idle scheduling class (see `ANALYSIS_NICE`), it runs one `PromptWorker` per
worker spool (`spool`, `spool.1`, ...), each over a `SpoolFollower` (records the worker's
writer has stored, its own offset file, which the worker's spool honours before dropping
segments), and talks to the store as the workers do (the owner's ClickHouse HTTP interface in
embedded mode). The analysis uses the CPU nothing else wants (no duty cycle); the scheduler
gives the workers and the engine the cores first.

What it keeps of people: each worker's similarity index. An erasure is recorded in
`analytics.erasures` before anything is deleted; this process reads that list every second
(`ErasedPeople`) and forgets the asks of every person newly on it.

Stops on SIGTERM (the chunk in hand is finished, 10 s at most; SIGINT is left to the owner),
and by itself within a second once the owner is gone. Told to stop either way, it first leaves
the idle class (`leave_idle_class`): on busy cores it would not get the CPU to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from netra_analytics import metrics
from netra_analytics.config import Settings
from netra_analytics.errors import StoreError
from netra_analytics.ingest.erased import ErasedPeople
from netra_analytics.ingest.spool import SpoolBusy, SpoolFollower, spool_directory
from netra_analytics.privacy.audit import subject_hash
from netra_analytics.privacy.iphash import load_or_create_secret
from netra_analytics.prompts.cost import PriceTable
from netra_analytics.prompts.similarity import SimilarityIndex
from netra_analytics.prompts.worker import CONSUMER, STATE_NOTE, PromptWorker, state_note
from netra_analytics.store import open_store
from netra_analytics.store.calls import StoreCalls

log = logging.getLogger(__name__)

# The lowest priority, below the engine's query threads (nice 10, `chdb_backend`): when the
# machine is short of CPU, storing what was acknowledged comes before analysing it, and the
# analysis catches up after (its lag is `netra_prompt_worker_lag_seconds`). At nice 10 it took
# a third of the CPU while the writers drained a backlog (issue 17, bench/README "Sixth pass");
# at nice 19 still 16 % of a core while the workers were saturated at one event per request,
# as the fair scheduler gives every runnable thread a share by its weight. Under SCHED_IDLE
# (sched(7)) it runs only on CPU nothing else wants: the workers then acknowledged 9 % more
# requests (bench/README "Seventh pass"). Nice 19 stays for where SCHED_IDLE is refused.
ANALYSIS_NICE = 19
TICK_SECONDS = 1.0  # the lag gauge, and erasures read again
STOP_SECONDS = 10.0
FOLLOWER_WAIT_SECONDS = 30.0
# Spool records and events per analysis call. In a worker the call is kept short (50 records)
# because it holds the interpreter the requests need; here nothing waits on it, and each call
# has fixed costs (a thread lookup in the store, the classifier's ~0.8 ms): at one event per
# request, 50 records held ~7 prompts. A call takes what the writer stored since the last one,
# up to 5,000 records or 10,000 events (500 requests of 20): at one event per request, chunks
# of 500 records made some three thread lookups a second in the engine owner for what one
# lookup per writer commit does (issue 17, bench/README "Ninth pass").
CHUNK_RECORDS = 5000
CHUNK_EVENTS = 10_000


def main() -> None:
    """The process's entry (a spawned `multiprocessing.Process` of the engine owner)."""
    import uvloop

    from netra_analytics import logs
    from netra_analytics.workers import orphan_grace, owner_pid, stop_with_owner

    settings = Settings.from_env(os.environ)
    logs.configure(settings.log_level)
    os.nice(ANALYSIS_NICE)
    with contextlib.suppress(AttributeError, OSError):  # Linux only
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    # Ctrl-C reaches the whole process group: the owner stops this process (SIGTERM) once its
    # workers are done, rather than see it end early and start it again.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_with_owner(
        owner_pid(),
        grace=orphan_grace(STOP_SECONDS * max(1, settings.workers)),
        before=functools.partial(leave_idle_class, os.getpid()),
    )
    try:
        uvloop.run(PromptAnalysisProcess(settings).run())
    except Exception:  # logged as one JSON line; the owner starts another process
        log.exception("the prompt analysis process failed")
        sys.exit(1)


class PromptAnalysisProcess:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = open_store(settings)
        self.secret = load_or_create_secret(settings.ip_hash_secret, settings.data_dir)
        self.erased = ErasedPeople(self.store, self.secret)
        self.followers: list[SpoolFollower] = []
        self.workers: list[tuple[PromptWorker, StoreCalls]] = []
        self._forgotten: dict[str, float] = {}  # subject hash -> erasure time handled

    async def run(self) -> None:
        """Analyse every worker's spool until SIGTERM."""
        # Imported here: the service imports the prompt worker, not the other way round.
        from netra_analytics.service import Supervisor, similarity_index

        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
        settings = self.settings
        prices = PriceTable.load(settings.model_prices_file)
        calls = StoreCalls("store-erasures", workers=1, timeout=settings.store_timeout_seconds)
        with contextlib.suppress(StoreError):  # the erasures before this start are done
            await calls.run(self.erased.refresh)
            self._forgotten = self.erased.requested()
        supervisors: list[Supervisor] = []
        tasks: list[asyncio.Task[Any]] = []
        for index in range(settings.workers):
            follower = await _follower(spool_directory(settings.data_dir, index), settings)
            worker_calls = StoreCalls(
                f"store-prompts-{index}", workers=1, timeout=settings.store_timeout_seconds
            )
            worker = PromptWorker(
                follower, self.store, prices=prices, chunk=CHUNK_RECORDS,
                chunk_events=CHUNK_EVENTS, duty=1.0, calls=worker_calls,
                index=similarity_index(settings), erased=self.erased,
                thread_cache_bytes=settings.prompt_thread_cache_bytes,
            )  # fmt: skip
            self.followers.append(follower)
            self.workers.append((worker, worker_calls))
            tasks.append(asyncio.create_task(follower.follow()))
            supervisors.append(Supervisor(f"prompts-{index}", worker.run))
        tasks.append(asyncio.create_task(self._tick(calls)))
        log.info("prompt analysis ready", extra={"spools": settings.workers})
        await stopping.wait()
        for supervisor, (worker, _) in zip(supervisors, self.workers, strict=True):
            await supervisor.stop(functools.partial(_stop, worker))
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for follower in self.followers:
            follower.close()
        for one in [calls, *(c for _, c in self.workers)]:
            one.close()
        self.store.close()
        log.info("prompt analysis process stopped")

    async def _tick(self, calls: StoreCalls) -> None:
        while True:
            lags = [worker.lag_seconds() for worker, _ in self.workers]
            metrics.PROMPT_WORKER_LAG.set(max(lags))
            now = time.time()
            for follower, lag in zip(self.followers, lags, strict=True):
                try:
                    follower.write_note(STATE_NOTE, state_note(lag, now))
                except OSError as exc:  # the workers' health says not_running; next second
                    log.warning("state note not written", extra={"error": str(exc)[:300]})
            try:
                await calls.run(self.erased.refresh)
                await self.forget_erased()
            except StoreError as exc:  # the workers' own refresh says so too; next second
                log.debug("erasures not read", extra={"error": str(exc)[:300]})
            await asyncio.sleep(TICK_SECONDS)

    async def forget_erased(self) -> int:
        """Drop from each similarity index the asks of people erased since the last look;
        how many asks were dropped."""
        requested = self.erased.requested()
        new = {s for s, at in requested.items() if self._forgotten.get(s, -1.0) < at}
        if not new:
            return 0
        dropped = 0
        for worker, worker_calls in self.workers:
            dropped += await worker_calls.run(_forget, worker.index, self.secret, new)
        self._forgotten = requested
        log.info("erased people forgotten by the prompt analysis", extra={"asks": dropped})
        return dropped


async def _follower(directory: Path, settings: Settings) -> SpoolFollower:
    """The follower of `directory`, once the process before this one has let go of it (one
    whose owner was killed takes up to a second to see it and stop): tries for
    FOLLOWER_WAIT_SECONDS, then raises SpoolBusy."""
    deadline = time.monotonic() + FOLLOWER_WAIT_SECONDS
    while True:
        try:
            return SpoolFollower(directory, reader=CONSUMER, max_bytes=settings.spool_max_bytes)
        except SpoolBusy:
            if time.monotonic() >= deadline:
                raise
            log.info("waiting for another prompt analysis process to leave %s", directory)
            await asyncio.sleep(1.0)


def _forget(index: SimilarityIndex, secret: bytes, subjects: set[str]) -> int:
    """In the worker's analysis thread: the index is changed there only."""
    users = [user for user in index.users() if subject_hash(secret, user) in subjects]
    return sum(index.remove(user) for user in users)


async def _stop(worker: PromptWorker, task: asyncio.Task[None]) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(worker.stop(task), STOP_SECONDS)


def leave_idle_class(pid: int) -> None:
    """Move every thread of process `pid` from SCHED_IDLE (and nice 19) back to the normal
    class, so that a stop is not starved: on a machine whose cores are busy an idle-class thread
    gets almost no CPU, and an analysis process told to stop during its start-up still held
    the spools' follower locks 30 s later, which the next process waits for
    (`FOLLOWER_WAIT_SECONDS`). Does nothing where the calls are refused."""
    try:
        threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:  # not Linux, or the process has ended
        return
    for tid in threads:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
        with contextlib.suppress(OSError):  # lowering nice needs CAP_SYS_NICE or RLIMIT_NICE
            os.setpriority(os.PRIO_PROCESS, tid, 0)


def wait_for_exit(process: Any, seconds: float) -> None:
    """Join `process`; SIGKILL it when it has not ended after `seconds`."""
    process.join(seconds)
    if process.is_alive():
        log.warning("the prompt analysis process did not stop; killing it")
        process.kill()
        process.join(5)
