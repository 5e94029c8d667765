"""Liveness, readiness, and the health gauges.

`/health` answers while the process runs. `/health/ready` checks ClickHouse (the freshness
query, within two seconds, in a pool of its own: with a hung store a probe answers failing
within twice that, `Monitor.assess`), Redis when configured, the spool (backlog, quarantined
records), each background worker (`running` or `failing`, from its supervisor), the writer's
counters, the prompt worker's skips and recoveries, how fresh the stored data is, the tag's
heartbeat per GTM container, and the storage used (`storage`: bytes on disk per ClickHouse
table, and the spool's).

Each check says `health`: ok, degraded or failing; the reply's `health` is the worst of them.
Failing (503, `status: not_ready`): ClickHouse does not answer or the schema is not migrated,
the spool backlog is over ANALYTICS_HEALTH_SPOOL_FAILING_FRACTION of its cap, the writer is
failing (crashed, not settled again), or no event stored for
ANALYTICS_HEALTH_FRESHNESS_FAILING_MINUTES while events arrive. Degraded (200, says so): Redis
unreachable, the spool over ..._SPOOL_DEGRADED_FRACTION, ..._WRITER_FAILURES failed inserts in
a row, no event stored for ..._FRESHNESS_MINUTES while events arrive, or a container's tag
heartbeat older than ..._TAG_HEARTBEAT_MINUTES. The same levels are the
`netra_health_status{check}` gauges (0, 1, 2). Ingestion keeps accepting events while not
ready, as long as the spool has room and the writer is not crashing over and over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from netra_analytics import metrics
from netra_analytics.errors import public_error
from netra_analytics.ingest.spool import spool_index
from netra_analytics.prompts.worker import outside_status
from netra_analytics.service import Service
from netra_analytics.store.base import Store

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0  # Redis's ping; the store's check has the health pool's timeout

LATEST_EVENT = "SELECT max(timestamp) AS latest, count() > 0 AS any FROM analytics.frontend_events"
# Bytes on disk per table (a materialized view's are its inner table's, named after the view).
TABLE_BYTES = """
SELECT if(t.name = '', p.table, t.name) AS name, sum(p.bytes_on_disk) AS bytes
FROM system.parts AS p
LEFT JOIN (
  SELECT name, concat('.inner_id.', toString(uuid)) AS storage
  FROM system.tables WHERE database = 'analytics'
) AS t ON p.table = t.storage
WHERE p.database = 'analytics' AND p.active
GROUP BY name
ORDER BY name
"""


def _store_facts(store: Store) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The freshness query and the bytes per table, in one call of the health pool."""
    return store.query_rows(LATEST_EVENT), store.query_rows(TABLE_BYTES)


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def live(request: Request) -> Response:
    return _json({"status": "ok"})


async def ready(request: Request) -> Response:
    """`GET /health/ready`: `{"status": "ready"|"not_ready", "health": "ok"|"degraded"|
    "failing", "health_checks": {check: level}, "checks": {check: facts}}`; 503 only when a
    check is failing (the module's docstring and the README give each check's thresholds)."""
    monitor: Monitor = request.app.state.monitor
    body = await monitor.assess(fresh=True)
    return _json(body, 503 if body["health"] == FAILING else 200)


OK, DEGRADED, FAILING = "ok", "degraded", "failing"
_WORST = {OK: 0, DEGRADED: 1, FAILING: 2}
TICK_SECONDS = 1.0  # the ingestion rate, uptime, availability, spool backlog, prompt lag
ASSESS_SECONDS = 15.0  # health and storage gauges (one store query: Prometheus scrapes at 15 s)
MAX_CONTAINER_GAUGES = 50  # tag heartbeat gauges kept, the most recent containers first


def _worst(*levels: str) -> str:
    return max(levels, key=_WORST.__getitem__, default=OK)


class Monitor:
    """Keeps this process's gauges current and assesses health.

    `run()` ticks once a second (the ingestion rate from its counter, uptime, availability,
    spool backlog, prompt-worker lag: no store call) and every ASSESS_SECONDS runs `assess()`,
    which makes the one store query of a health check (in the health pool, 2 s at most) and
    sets the health, freshness, heartbeat and storage gauges. `/metrics` reads only gauges:
    a scrape never waits for the store.
    """

    def __init__(
        self,
        service: Service,
        availability: metrics.Availability | None = None,
        rate: metrics.IngestionRate | None = None,
    ) -> None:
        self.service = service
        self.availability = availability or metrics.Availability()
        self.rate = rate or metrics.IngestionRate(
            quiet_seconds=service.settings.health_freshness_minutes * 60
        )
        self.started = time.monotonic()
        self._assessing: asyncio.Task[dict[str, Any]] | None = None
        self._assessing_started = 0.0  # monotonic
        self._refresh: asyncio.Task[dict[str, Any]] | None = None

    async def run(self) -> None:
        next_assessment = time.monotonic()
        while True:
            try:
                self.tick()
            except Exception:  # a gauge left stale must not stop the others
                log.exception("updating the metrics failed")
            if time.monotonic() >= next_assessment:
                next_assessment = time.monotonic() + ASSESS_SECONDS
                self._refresh = asyncio.create_task(self.assess())
                self._refresh.add_done_callback(_log_failure)
            await asyncio.sleep(TICK_SECONDS)

    async def stop(self) -> None:
        for task in (self._refresh, self._assessing):
            if task is not None:
                task.cancel()

    def tick(self) -> None:
        service = self.service
        self.rate.sample()
        metrics.API_UPTIME.set(time.monotonic() - self.started)
        metrics.API_AVAILABILITY.set(self.availability.ratio())
        metrics.SPOOL_BACKLOG.set(service.spool.backlog_bytes)
        if service.prompts is not None:
            metrics.PROMPT_WORKER_LAG.set(service.prompts.lag_seconds())

    async def assess(self, fresh: bool = False) -> dict[str, Any]:
        """Every check's facts (`checks`) and level (`health_checks`: ok, degraded, failing),
        the worst of them (`health`) and `status` (`not_ready` when failing); sets the gauges.

        Joins an assessment under way rather than starting a second one beside it (the health
        pool has one thread: probes do not pile store calls up behind a hung one). `fresh`
        (a probe): only one that started after the call, so that a probe never answers with
        what was seen before it arrived (a failure that began meanwhile); one started earlier
        is waited for (its store call is bounded, 2 s) and the next one shared."""
        arrived = time.monotonic()
        while True:
            task = self._assessing
            if task is None or task.done():
                self._assessing_started = time.monotonic()
                task = self._assessing = asyncio.create_task(self._assess())
                task.add_done_callback(_log_failure)
            if not fresh or self._assessing_started >= arrived:
                return await asyncio.shield(task)
            with contextlib.suppress(Exception):
                await asyncio.shield(task)

    async def _assess(self) -> dict[str, Any]:
        service, settings = self.service, self.service.settings
        checks: dict[str, Any] = {}
        levels: dict[str, str] = {}

        clickhouse: dict[str, Any] = {
            "backend": service.store.description if service.store else None
        }
        try:
            if service.store is None or not service.schema_ready.is_set():
                raise SchemaNotReady("schema not migrated yet")
            rows, sizes = await service.health_calls.run(
                _store_facts, service.store, wait_for_thread=False
            )
            clickhouse["status"] = "ok"
            latest = rows[0]["latest"] if rows and rows[0]["any"] else None
            checks["freshness"], levels["freshness"] = self._freshness(latest)
            tables = {row["name"]: int(row["bytes"]) for row in sizes}
            spool_bytes = await asyncio.to_thread(_spool_bytes, service)
            checks["storage"] = {"tables_bytes": tables, "spool_bytes": spool_bytes}
            for table, size in tables.items():
                metrics.STORAGE_USAGE.labels("clickhouse", table).set(size)
            metrics.STORAGE_USAGE.labels("spool", "").set(spool_bytes)
            levels["clickhouse"] = OK
        except Exception as exc:
            error = str(exc) if isinstance(exc, SchemaNotReady) else public_error(exc)
            clickhouse.update(status="error", error=error)
            levels["clickhouse"] = FAILING
        checks["clickhouse"] = clickhouse

        if service.live.primary is not None:
            name = service.live.name  # redis, or the engine owner's live state
            checks[name] = await _redis_status(service)
            levels[name] = OK if checks[name]["status"] == "ok" else DEGRADED
            if levels[name] == OK:
                with contextlib.suppress(Exception):
                    used = await asyncio.wait_for(service.live.used_memory(), CHECK_TIMEOUT)
                    if used is not None:
                        metrics.STORAGE_USAGE.labels("redis", "").set(used)

        checks["spool"], levels["spool"] = self._spool()
        workers = {name: s.status() for name, s in service.supervisors.items()}
        if workers:
            checks["workers"] = workers
        if "writer" in service.supervisors:
            state = service.writer_state
            writer_failing = workers["writer"]["status"] == "failing"
            levels["writer"] = (
                FAILING if writer_failing
                else DEGRADED if state.consecutive_failures >= settings.health_writer_failures
                else OK
            )  # fmt: skip
            checks["writer"] = {
                "status": "failing" if writer_failing else "ok",
                "events_written": state.events_written,
                "duplicates_skipped": state.duplicates_skipped,
                "last_success": _iso(state.last_success),
                "consecutive_failures": state.consecutive_failures,
                "last_error": state.last_error
                or (workers["writer"]["last_crash"] if writer_failing else None),
            }  # fmt: skip
        if service.prompts is not None:
            checks["prompts"] = service.prompts.status()
        elif service.settings.worker_process:
            checks["prompts"] = outside_status(service.spool, service.clock())
        if service.funnel_walks is not None:
            checks["funnel_walks"] = service.funnel_walks.status()
        heartbeats = await service.live.tag_heartbeats()
        checks["gtm_tags"] = _tag_heartbeats(service, heartbeats)
        checks["tag_heartbeat"], levels["tag_heartbeat"] = self._tag_heartbeat(heartbeats)

        for check, level in levels.items():
            metrics.HEALTH_STATUS.labels(check).set(metrics.HEALTH_LEVELS[level])
        overall = _worst(*levels.values())
        status = "not_ready" if overall == FAILING else "ready"
        return {"status": status, "health": overall, "health_checks": levels, "checks": checks}

    def _freshness(self, latest: str | None) -> tuple[dict[str, Any], str]:
        """Degraded (failing) when no event has been stored for
        ANALYTICS_HEALTH_FRESHNESS_MINUTES (..._FAILING_MINUTES) while events arrive: the
        stale time is the newest stored event's age, but at most how long this process has
        been accepting events without a pause of that many minutes (a site quiet for hours
        whose first event waits for the next flush is not stale); ok when none arrive."""
        settings = self.service.settings
        self.rate.sample()
        arriving_for = self.rate.arriving_for()
        body: dict[str, Any] = {"latest_event": None, "lag_seconds": None}
        stale = arriving_for  # nothing stored yet: as long as events have waited
        if latest is not None:
            moment = datetime.fromisoformat(latest).replace(tzinfo=UTC)
            age = max(0.0, self.service.clock() - moment.timestamp())
            body = {
                "latest_event": moment.isoformat(timespec="milliseconds"),
                "lag_seconds": round(age, 3),
            }
            metrics.DATA_FRESHNESS.set(age)
            stale = None if arriving_for is None else min(age, arriving_for)
        level = OK
        if stale is not None:
            if stale >= settings.health_freshness_failing_minutes * 60:
                level = FAILING
            elif stale >= settings.health_freshness_minutes * 60:
                level = DEGRADED
        return body, level

    def _spool(self) -> tuple[dict[str, Any], str]:
        settings, spool = self.service.settings, self.service.spool
        backlog = spool.backlog_bytes
        share = backlog / spool.max_bytes
        level = (
            FAILING if share >= settings.health_spool_failing_fraction
            else DEGRADED if share >= settings.health_spool_degraded_fraction
            else OK
        )  # fmt: skip
        quarantined = list(spool.quarantined.values())
        return {
            "status": "full" if level == FAILING else "corrupt_records" if quarantined else "ok",
            "backlog_bytes": backlog,
            "max_bytes": spool.max_bytes,
            # Damaged records set aside in spool/quarantine/ (this data directory, ever).
            "quarantined_records": len(quarantined),
            "quarantined_bytes": sum(q.length for q in quarantined),
        }, level

    def _tag_heartbeat(self, heartbeats: dict[str, tuple[int, str]]) -> tuple[dict[str, Any], str]:
        """Degraded when a GTM container's tag has sent no heartbeat for
        ANALYTICS_HEALTH_TAG_HEARTBEAT_MINUTES (the tag sends one every 5 minutes while a page
        is open); never failing: a quiet site is not a broken service."""
        limit = self.service.settings.health_tag_heartbeat_minutes * 60
        now_ms = self.service.clock() * 1000
        ages = {container: max(0.0, (now_ms - at_ms) / 1000)
                for container, (at_ms, _) in heartbeats.items()}  # fmt: skip
        for container in sorted(ages, key=ages.__getitem__)[:MAX_CONTAINER_GAUGES]:
            metrics.TAG_HEARTBEAT_AGE.labels(container).set(ages[container])
        stale = sorted(container for container, age in ages.items() if age >= limit)
        return {
            "stale_containers": stale,
            "threshold_minutes": self.service.settings.health_tag_heartbeat_minutes,
        }, DEGRADED if stale else OK


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("health assessment failed", exc_info=task.exception())


def _spool_bytes(service: Service) -> int:
    """Bytes under the data directory's spools (`spool`, and `spool.<i>` of the other worker
    processes when there are several: each process reports the same total)."""
    roots = [d for d in service.settings.data_dir.iterdir() if spool_index(d) is not None]
    return sum(p.stat().st_size for root in roots for p in root.rglob("*") if p.is_file())


def _tag_heartbeats(service: Service, heartbeats: dict[str, tuple[int, str]]) -> dict[str, Any]:
    """When the browser tag last fired, per GTM container."""
    now_ms = service.clock() * 1000
    return {
        container: {
            "last_fired": _iso(at_ms / 1000),
            "seconds_ago": round((now_ms - at_ms) / 1000, 1),
            "tag_version": version,
        }
        for container, (at_ms, version) in sorted(heartbeats.items())
    }


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


async def _redis_status(service: Service) -> dict[str, Any]:
    """Redis trouble degrades the service (per-process limits, local live state), it does not
    make it unready: ingestion goes on."""
    try:
        await asyncio.wait_for(service.live.ping(), CHECK_TIMEOUT)
    except Exception as exc:
        return {"status": "degraded", "error": public_error(exc)}
    if service.live.degraded:
        return {"status": "recovering", "error": service.live.last_error}
    return {"status": "ok"}


class SchemaNotReady(RuntimeError):
    pass
