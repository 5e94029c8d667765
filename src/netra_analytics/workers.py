"""Several worker processes (`ANALYTICS_WORKERS` > 1): the engine owner and its workers.

Python's request path uses one core; HTTP, validation and the spool's appends are per request,
so they scale over processes. The `serve` process becomes the engine owner:

- embedded mode: it opens chDB (one data path per process allows nothing else), migrates, and
  serves ClickHouse's HTTP interface from it on 127.0.0.1 with a password drawn per start
  (`store/chdb_server.py`); every worker then talks to the store exactly as to a ClickHouse
  server (`HttpStore`), the code path of production. Server mode (`CLICKHOUSE_ANALYTICS_URL`):
  it migrates, and the workers use that server directly;
- without `REDIS_ANALYTICS_URL`, it keeps the live state (rate limits, sessions, live metrics,
  hot prompts, the report cache) and serves it on a Unix socket in the data directory
  (`live/remote.py`), so a user's limit holds across workers and live reports see every
  worker's traffic; with Redis, workers use Redis;
- it runs the funnel walk builder (once, not per worker), and stores the spools a larger
  worker count left (`service.drain_extra_spools`);
- it starts the prompt analysis process (`prompt_process`) for every worker's spool, and starts
  it again when it dies;
- it runs N workers under uvicorn's process supervisor; uvicorn replaces a worker that dies or
  stops answering its health pings. On Linux each worker listens on a socket of its own in the
  port's `SO_REUSEPORT` group, and the kernel spreads new connections over them by a hash of
  their addresses (`reuse_port_listeners`): on one shared socket, the worker that wakes first
  takes every connection waiting, and clients that keep their connections (a proxy, a load
  generator) stayed with it: 30 of wrk's 32 on one worker, and a third less throughput, in
  one run of three. A worker's replacement binds its own; connections waiting in a dead
  worker's queue are reset, as its open ones are.

Each worker is a `Service` in server mode: it claims a spool directory of its own
(`ingest.spool.claim_spool`), and runs its own batch writer, so a worker killed with -9 leaves
its acknowledged events in its spool, and its replacement claims that spool and stores them.
Its prompts are analysed by the prompt analysis process, which reads the spool behind the
writer with an offset of its own (`SpoolFollower`); see `prompt_process` for why not here.

Metrics: `PROMETHEUS_MULTIPROC_DIR` is `<data_dir>/metrics`, emptied at start, for the owner
and the workers (prometheus_client's multiprocess mode; `/metrics` of any worker aggregates).

Stop (SIGTERM or SIGINT to the owner): the workers get SIGTERM and stop as a single process
does (open requests, then their writers flush within `ANALYTICS_SHUTDOWN_SECONDS`; what is not
stored stays in their spools), then the owner stops the prompt analysis process (the chunk in
hand, 10 s at most), the builder, the live state and the store.
A worker whose owner is gone (killed with -9) stops itself within a second, so its socket and
spool are free for the next start (and exits anyway if that stop has not ended within its
bound + 30 s: `stop_with_owner`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from netra_analytics.config import LIVE_SOCKET_ENV, OWNER_PID_ENV, WORKER_PROCESS_ENV, Settings
from netra_analytics.errors import StoreError
from netra_analytics.interpreter import tune_for_serving

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastapi import FastAPI

    from netra_analytics.live.remote import LiveStateServer
    from netra_analytics.service import Supervisor
    from netra_analytics.store import Store

log = logging.getLogger(__name__)

STORE_USER = "netra"
MAX_UNIX_PATH = 100  # bytes: AF_UNIX paths are at most 107 on Linux
METRICS_DIR = "metrics"
PARENT_CHECK_SECONDS = 1.0
ORPHAN_MARGIN_SECONDS = 30.0  # past its own stop's bound, before a process without owner exits
ANALYSIS_RESTART_SECONDS = 1.0  # doubling up to the max while it keeps dying young
ANALYSIS_MAX_RESTART_SECONDS = 30.0
ANALYSIS_SETTLED_SECONDS = 60.0


def serve(settings: Settings) -> int:
    """Run the engine owner and `settings.workers` worker processes until SIGTERM/SIGINT."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    metrics_dir = settings.data_dir / METRICS_DIR
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    # Before prometheus_client creates any metric (importing `service` does), here and in the
    # workers (they inherit it).
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    import uvicorn

    from netra_analytics import logs
    from netra_analytics.service import UVICORN_SHARE

    logs.configure(settings.log_level)
    owner = EngineOwner(settings)
    try:
        owner.start()
        os.environ.update(owner.worker_env())
        owner.start_prompt_analysis()  # spawned: it reads the workers' environment
        tune_for_serving()  # the owner's loop answers every worker's live-state calls
        config = uvicorn.Config(
            "netra_analytics.workers:worker_app",
            factory=True,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            loop="uvloop",
            http="netra_analytics.workers:HeadTimeoutProtocol",
            access_log=False,
            log_config=None,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            timeout_graceful_shutdown=max(1, round(settings.shutdown_seconds * UVICORN_SHARE)),
        )
        # Exits as uvicorn does when the port is taken.
        sock, listeners = reuse_port_listeners(config.bind_socket(), settings.host)
        try:
            _worker_processes_class()(config, sockets=listeners).run()
        finally:
            sock.close()
    finally:
        owner.stop()
    return 0


class _ReusePortListener:
    """Unpickled in a worker (uvicorn spawns them and hands their sockets over by pickling) as a
    socket of its own in the port's SO_REUSEPORT group (`_bind_reuse_port`)."""

    def __init__(self, family: socket.AddressFamily, host: str, port: int) -> None:
        self.family, self.host, self.port = family, host, port

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _bind_reuse_port, (self.family, self.host, self.port)


def _bind_reuse_port(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def reuse_port_listeners(
    bound: socket.socket, host: str
) -> tuple[socket.socket, list[socket.socket]]:
    """(the socket the owner keeps open, what uvicorn hands each worker to listen on).

    `bound`: the socket uvicorn bound plainly, so that a second service on the port was
    refused. On Linux it is replaced by one bound into the port's SO_REUSEPORT group that
    never listens: it holds the port (a plain bind is refused while it is open) and, not
    listening, is given no connection; each worker binds a listener of its own into the group
    (`_ReusePortListener`). Elsewhere (no balancing by SO_REUSEPORT) every worker shares
    `bound`.
    """
    if not (sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")):
        return bound, [bound]
    family, port = bound.family, bound.getsockname()[1]
    bound.close()
    held = _bind_reuse_port(family, host, port)
    # uvicorn only passes its sockets on to the workers: there this one becomes a socket.
    return held, [cast(socket.socket, _ReusePortListener(family, host, port))]


class EngineOwner:
    """The store, the shared live state and the once-only background work, for the workers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store | None = None
        self.store_server: Any = None  # ChdbHttpServer in embedded mode
        self.store_url: str | None = None
        self.live_socket: Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self.analysis: Any = None  # the prompt analysis process (multiprocessing.Process)
        self._analysis_watch: threading.Thread | None = None
        self._closing = threading.Event()
        self._analysis_started = 0.0

    def start(self) -> None:
        from netra_analytics.privacy.iphash import load_or_create_secret
        from netra_analytics.store import open_store
        from netra_analytics.store.migrations import migrate

        settings = self.settings
        # Created here once, not raced for by the workers.
        load_or_create_secret(settings.ip_hash_secret, settings.data_dir)
        load_or_create_secret(settings.session_secret, settings.data_dir, "session.key")
        self.store = open_store(settings)
        try:
            applied = migrate(self.store, settings.clickhouse_cluster)
        except StoreError as exc:
            # Server mode with the server down: the workers migrate once it answers.
            log.warning("store not ready at start-up", extra={"error": str(exc)[:300]})
        else:
            if applied:
                log.info("migrations applied", extra={"migrations": applied})
        if settings.embedded:
            self._serve_store()
        if settings.redis_url is None:
            self.live_socket = _socket_path(settings.data_dir / "live.sock")
        self._thread = threading.Thread(target=self._run_loop, name="engine-owner", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._failure is not None:
            raise RuntimeError(f"the engine owner could not start: {self._failure}")

    def _serve_store(self) -> None:
        from netra_analytics import auth
        from netra_analytics.store.chdb_backend import ChdbStore
        from netra_analytics.store.chdb_server import ChdbHttpServer

        assert isinstance(self.store, ChdbStore)
        host = "localhost" if self.settings.host in {"0.0.0.0", "::"} else self.settings.host
        auth.bootstrap_admin_key(self.store, f"http://{host}:{self.settings.port}/")
        password = secrets.token_urlsafe(24)
        self.store_server = ChdbHttpServer(self.store, user=STORE_USER, password=password)
        self.store_server.serve_in_thread()
        port = self.store_server.port
        self.store_url = f"clickhouse://{STORE_USER}:{password}@127.0.0.1:{port}/analytics"
        log.info("serving the embedded store to the workers", extra={"port": port})

    def worker_env(self) -> dict[str, str]:
        """What the workers read besides the operator's environment."""
        env = {
            WORKER_PROCESS_ENV: "1",
            OWNER_PID_ENV: str(os.getpid()),
            "ANALYTICS_WORKERS": str(self.settings.workers),
            "ANALYTICS_DATA_DIR": str(self.settings.data_dir),
            "ANALYTICS_SERVICE_HOST": self.settings.host,
            "ANALYTICS_SERVICE_PORT": str(self.settings.port),
            "ANALYTICS_FUNNEL_WALK_DAYS": "0",  # built once, here
        }
        if self.store_url is not None:
            env["CLICKHOUSE_ANALYTICS_URL"] = self.store_url
        if self.live_socket is not None:
            env[LIVE_SOCKET_ENV] = str(self.live_socket)
        return env

    def _run_loop(self) -> None:
        import uvloop

        try:
            uvloop.run(self._main())
        except BaseException as exc:  # reported by start(), or logged once running
            self._failure = exc
            log.exception("the engine owner's event loop stopped")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        from netra_analytics.live.memory import InProcessLiveState
        from netra_analytics.live.remote import LiveStateServer
        from netra_analytics.service import drain_extra_spools

        settings, store = self.settings, self.store
        assert store is not None
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server: LiveStateServer | None = None
        tasks: list[asyncio.Task[None]] = []
        builder: Supervisor | None = None
        try:
            if self.live_socket is not None:
                state = InProcessLiveState(
                    hot_prompts_tracked=settings.hot_prompts_tracked,
                    cache_max_bytes=settings.report_cache_max_bytes,
                )
                server = LiveStateServer(state, self.live_socket)
                await server.start()
            tasks.append(
                asyncio.create_task(drain_extra_spools(settings, store, keep=settings.workers))
            )
            if settings.funnel_walk_days:
                builder = self._funnel_walks(store)
        finally:
            self._ready.set()
        await self._stopping.wait()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if builder is not None:
            await builder.stop(self._stop_builder)
        if server is not None:
            await server.close()

    def _funnel_walks(self, store: Store) -> Supervisor:
        from netra_analytics.reports.funnel_walks import FunnelWalkBuilder
        from netra_analytics.reports.funnels import load_funnels
        from netra_analytics.service import Supervisor

        settings = self.settings

        async def run() -> None:
            self._builder = FunnelWalkBuilder(
                store, lambda: load_funnels(settings.funnels_file), time.time,
                settings.funnel_walk_days,
            )  # fmt: skip
            await self._builder.run()

        return Supervisor("funnel_walks", run)

    async def _stop_builder(self, task: asyncio.Task[None]) -> None:
        builder = getattr(self, "_builder", None)
        if builder is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(builder.stop(task), 5.0)

    def start_prompt_analysis(self) -> None:
        """Start the prompt analysis process (`prompt_process`), and again whenever it ends
        before the owner stops (after 1 s, doubling to 30 s while it dies within a minute)."""
        self._start_analysis()
        self._analysis_watch = threading.Thread(
            target=self._watch_analysis, name="analysis-watch", daemon=True
        )
        self._analysis_watch.start()

    def _start_analysis(self) -> None:
        import multiprocessing

        from netra_analytics import prompt_process

        self.analysis = multiprocessing.get_context("spawn").Process(
            target=prompt_process.main, name="netra-prompt-analysis"
        )
        self.analysis.start()
        self._analysis_started = time.monotonic()
        log.info("prompt analysis process started", extra={"pid": self.analysis.pid})

    def _watch_analysis(self) -> None:
        delay = ANALYSIS_RESTART_SECONDS
        while not self._closing.wait(PARENT_CHECK_SECONDS):
            if self.analysis.is_alive():
                continue
            if time.monotonic() - self._analysis_started > ANALYSIS_SETTLED_SECONDS:
                delay = ANALYSIS_RESTART_SECONDS
            log.warning(
                "the prompt analysis process ended; a new one starts in %.0f s", delay,
                extra={"pid": self.analysis.pid, "exitcode": self.analysis.exitcode},
            )  # fmt: skip
            _mark_dead(self.analysis.pid)
            if self._closing.wait(delay):
                return
            self._start_analysis()
            delay = min(ANALYSIS_MAX_RESTART_SECONDS, delay * 2)

    def _stop_analysis(self) -> None:
        self._closing.set()
        if self._analysis_watch is not None:
            self._analysis_watch.join(5)
        if self.analysis is not None and self.analysis.pid is not None:
            from netra_analytics.prompt_process import STOP_SECONDS, leave_idle_class, wait_for_exit

            leave_idle_class(self.analysis.pid)
            self.analysis.terminate()  # SIGTERM: it finishes the chunk in hand
            wait_for_exit(self.analysis, STOP_SECONDS + 2)
            _mark_dead(self.analysis.pid)

    def stop(self) -> None:
        self._stop_analysis()
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)
        if self.store_server is not None:
            self.store_server.shutdown()
            self.store_server.server_close()
        if self.store is not None:
            self.store.close()


def _socket_path(wanted: Path) -> Path:
    """`wanted`, or a private directory's socket when the data directory's path is too long."""
    if len(os.fsencode(wanted.resolve())) <= MAX_UNIX_PATH:
        return wanted.resolve()
    return Path(tempfile.mkdtemp(prefix="netra-live-")) / "live.sock"


def _worker_processes_class() -> type:
    from uvicorn.supervisors.multiprocess import Multiprocess

    class WorkerProcesses(Multiprocess):
        """uvicorn's supervisor, with the metrics files of dead workers marked, and SIGHUP
        refused: a worker's replacement must start after it ends, to claim its spool."""

        def keep_subprocess_alive(self) -> None:
            before = {p.pid for p in self.processes if p.pid is not None}
            super().keep_subprocess_alive()
            for pid in before - {p.pid for p in self.processes}:
                log.warning("worker process %s ended; a new one replaces it", pid)
                _mark_dead(pid)

        def handle_hup(self) -> None:
            log.warning("SIGHUP ignored with ANALYTICS_WORKERS > 1: restart the service")

        def run(self) -> None:
            try:
                super().run()
            finally:
                for process in self.processes:
                    if process.pid is not None:
                        _mark_dead(process.pid)

    return WorkerProcesses


def _mark_dead(pid: int) -> None:
    from prometheus_client import multiprocess

    with contextlib.suppress(Exception):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def __getattr__(name: str) -> Any:
    # uvicorn imports the protocol by name in each worker (a class made in a function cannot
    # be sent to a spawned process); made there, from the worker's environment.
    if name == "HeadTimeoutProtocol":
        from netra_analytics.http_limits import head_timeout_protocol

        return head_timeout_protocol(Settings.from_env(os.environ).request_timeout_seconds)
    raise AttributeError(name)


def worker_app() -> FastAPI:
    """One worker's application (uvicorn's factory, in the worker process)."""
    from netra_analytics import logs
    from netra_analytics.app import create_app

    settings = Settings.from_env(os.environ)
    logs.configure(settings.log_level)
    stop_with_owner(owner_pid(), grace=orphan_grace(settings.shutdown_seconds))
    return create_app(settings, serving=True)


def owner_pid() -> int:
    """The engine owner's process id, as the owner set it for its processes: the parent's id
    read at start-up would already be another's if the owner had died meanwhile."""
    given = os.environ.get(OWNER_PID_ENV, "")
    return int(given) if given.isdigit() else os.getppid()


def orphan_grace(stop_seconds: float) -> float:
    """Seconds a process whose owner is gone has to stop after its SIGTERM before it exits
    anyway: its own stop's bound (`ANALYTICS_SHUTDOWN_SECONDS`, `prompt_process.STOP_SECONDS`
    per spool) and a margin."""
    return stop_seconds + ORPHAN_MARGIN_SECONDS


def stop_with_owner(owner: int, *, grace: float, before: Callable[[], None] | None = None) -> None:
    """SIGTERM to this process once its owner is gone (it was killed with -9), after calling
    `before` (in the watching thread); if it is still running `grace` seconds later, it exits
    with status 1. What it held is safe without a clean stop (acknowledged events are in the
    spool; the analysis resumes from its offset), and an orphan that lived on would keep its
    spool's locks and its memory: one that was told to stop in its start-up, at the idle
    scheduling class on busy cores, was found still running 40 minutes later."""

    def watch() -> None:
        while os.getppid() == owner:
            time.sleep(PARENT_CHECK_SECONDS)
        log.warning("the engine owner is gone; this worker stops")
        if before is not None:
            before()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace)
        log.error(
            "still running %.0f s after the engine owner was gone; exiting", grace,
            extra={"pid": os.getpid()},
        )  # fmt: skip
        os._exit(1)

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()
