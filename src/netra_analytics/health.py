"""Liveness and readiness.

`/health` answers while the process runs. `/health/ready` checks ClickHouse (the freshness
query, within two seconds, in a pool of its own: a probe never waits behind a hung one, it
reports the store as failing at once), Redis when configured, the spool (backlog, quarantined
records), each background worker (`running` or `failing`, from its supervisor), the writer's
counters, the prompt worker's skips and recoveries, how fresh the stored data is, and the
storage used (`storage`: bytes on disk per ClickHouse table, and the spool's). It is 503
when ClickHouse does not answer, the schema is not migrated, the spool is over 90 % of its cap,
or the writer is failing. Ingestion keeps accepting events while not ready, as long as the
spool has room and the writer is not crashing over and over.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from netra_analytics.errors import public_error
from netra_analytics.service import Service
from netra_analytics.store.base import Store

CHECK_TIMEOUT = 2.0  # Redis's ping; the store's check has the health pool's timeout
SPOOL_READY_FRACTION = 0.9

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
    service: Service = request.app.state.service
    checks: dict[str, Any] = {}
    ok = True

    clickhouse: dict[str, Any] = {"backend": service.store.description if service.store else None}
    try:
        if service.store is None or not service.schema_ready.is_set():
            raise SchemaNotReady("schema not migrated yet")
        rows, sizes = await service.health_calls.run(
            _store_facts, service.store, wait_for_thread=False
        )
        clickhouse["status"] = "ok"
        latest = rows[0]["latest"] if rows and rows[0]["any"] else None
        checks["freshness"] = _freshness(latest)
        checks["storage"] = {
            "tables_bytes": {row["name"]: int(row["bytes"]) for row in sizes},
            "spool_bytes": await asyncio.to_thread(service.spool.bytes_on_disk),
        }
    except Exception as exc:
        ok = False
        error = str(exc) if isinstance(exc, SchemaNotReady) else public_error(exc)
        clickhouse.update(status="error", error=error)
    checks["clickhouse"] = clickhouse

    if service.live.primary is not None:
        checks[service.live.name] = await _redis_status(service)

    spool = service.spool
    backlog = spool.backlog_bytes
    spool_ok = backlog < spool.max_bytes * SPOOL_READY_FRACTION
    ok = ok and spool_ok
    quarantined = list(spool.quarantined.values())
    checks["spool"] = {
        "status": "full" if not spool_ok else "corrupt_records" if quarantined else "ok",
        "backlog_bytes": backlog,
        "max_bytes": spool.max_bytes,
        # Damaged records set aside in spool/quarantine/ (this data directory, ever).
        "quarantined_records": len(quarantined),
        "quarantined_bytes": sum(q.length for q in quarantined),
    }
    workers = {name: s.status() for name, s in service.supervisors.items()}
    if workers:
        checks["workers"] = workers
    if "writer" in service.supervisors:
        state = service.writer_state
        writer_failing = workers["writer"]["status"] == "failing"
        ok = ok and not writer_failing
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
    if service.funnel_walks is not None:
        checks["funnel_walks"] = service.funnel_walks.status()
    checks["gtm_tags"] = await _tag_heartbeats(service)
    return _json({"status": "ready" if ok else "not_ready", "checks": checks}, 200 if ok else 503)


async def _tag_heartbeats(service: Service) -> dict[str, Any]:
    """When the browser tag last fired, per GTM container (informative: never makes the
    service unready, since a quiet site is not a broken service)."""
    now_ms = service.clock() * 1000
    heartbeats = await service.live.tag_heartbeats()
    return {
        container: {
            "last_fired": _iso(at_ms / 1000),
            "seconds_ago": round((now_ms - at_ms) / 1000, 1),
            "tag_version": version,
        }
        for container, (at_ms, version) in sorted(heartbeats.items())
    }


def _freshness(latest: str | None) -> dict[str, Any]:
    if latest is None:
        return {"latest_event": None, "lag_seconds": None}
    moment = datetime.fromisoformat(latest).replace(tzinfo=UTC)
    return {
        "latest_event": moment.isoformat(timespec="milliseconds"),
        "lag_seconds": round(time.time() - moment.timestamp(), 3),
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
