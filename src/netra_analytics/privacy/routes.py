"""The privacy endpoints: erase a person, export what is held about them, read the audit log.

    DELETE /api/analytics/users/{user_id}         202 {job_id, state, status}: erasure started
    GET    /api/analytics/erasures/{job_id}       the job: running, done (rows removed per
                                                  table) or failed
    GET    /api/analytics/users/{user_id}/export  NDJSON, streamed (privacy/export.py)
    GET    /api/analytics/audit                   the audit log, newest first

An erasure first lets the writer and the prompt worker store what this process's spool still
holds (at most `SPOOL_WAIT_SECONDS`), so that nothing the person sent before the request is
stored after it, and seals the spool's segment (it is deleted once read, taking the person's
records with it); then `privacy.erasure.erase`. Events for the same id that arrive after the
request are stored as those of a new person.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from netra_analytics.errors import StoreError, public_error
from netra_analytics.privacy import audit
from netra_analytics.privacy.erasure import ErasureResult, erase
from netra_analytics.privacy.export import export_lines
from netra_analytics.prompts.worker import CONSUMER as PROMPTS_CONSUMER
from netra_analytics.service import Service
from netra_analytics.store.base import Store

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/analytics", tags=["privacy"])

SPOOL_WAIT_SECONDS = 60.0
JOB = """
SELECT job_id, state, requested_at, finished_at, removed, error
FROM analytics.erasures
WHERE job_id = {job_id:String}
ORDER BY version DESC
LIMIT 1
"""
UserId = Annotated[str, Path(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
ISO_TIME = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$"


def _store(request: Request) -> tuple[Service, Store]:
    service: Service = request.app.state.service
    if service.store is None or not service.schema_ready.is_set():
        raise HTTPException(status_code=503, detail="the store is not ready yet")
    return service, service.store


def actor_of(request: Request) -> str:
    """Who is asking, for the audit log: the credential's name (the API key's name or the
    token's subject, as `auth.guard` put it on the request)."""
    principal = getattr(request.state, "principal", None)
    return str(principal.name) if principal is not None else "unauthenticated"


def _subject(service: Service, user_id: str) -> str:
    return audit.subject_hash(service.secret, user_id)


def _job_row(job_id: str, subject: str, requested: datetime, state: str, version: int,
             removed: dict[str, Any] | None = None, error: str = "") -> bytes:  # fmt: skip
    finished = datetime.now(UTC) if state != "running" else None
    return orjson.dumps(
        {
            "job_id": job_id,
            "subject": subject,
            "requested_at": _ms(requested),
            "state": state,
            "removed": orjson.dumps(removed or {}).decode(),
            "finished_at": _ms(finished) if finished else None,
            "error": error,
            "version": version,
        }
    )


def _ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@router.delete(
    "/users/{user_id}",
    status_code=202,
    summary="Erase a person: every event, prompt, summary and link that carries their id",
    description=(
        "Starts the erasure and answers at once with a job whose state "
        "`GET /api/analytics/erasures/{job_id}` reads: `running`, then `done` with the rows "
        "removed per table (and `purged_from_disk`: the rewritten parts are gone from disk too), "
        "or `failed`. The person's browsers (anonymous ids they signed in on first) go with "
        "them. Events for this id that arrive after the request are stored as a new person's. "
        "Recorded in the audit log."
    ),
)
async def delete_user(request: Request, user_id: UserId) -> JSONResponse:
    service, store = _store(request)
    job_id, requested = uuid.uuid4().hex, datetime.now(UTC)
    subject = _subject(service, user_id)
    row = _job_row(job_id, subject, requested, "running", 1)
    await asyncio.to_thread(store.insert_json_rows, "erasures", row)
    task = asyncio.create_task(
        _run_erasure(
            service,
            store,
            user_id,
            job_id,
            subject,
            requested,
            actor_of(request),
            request.headers.get("x-request-id", ""),
        )
    )
    tasks: set[asyncio.Task[None]] = request.app.state.__dict__.setdefault("erasures", set())
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    body = {"job_id": job_id, "state": "running", "status": f"/api/analytics/erasures/{job_id}"}
    return JSONResponse(body, status_code=202)


async def _run_erasure(
    service: Service,
    store: Store,
    user_id: str,
    job_id: str,
    subject: str,
    requested: datetime,
    actor: str,
    request_id: str,
) -> None:
    try:
        stored = await _spool_stored(service, SPOOL_WAIT_SECONDS)
        log.info("erasure: spool stored", extra={"job_id": job_id, "stored": stored})
        await service.spool.seal()
        result = await asyncio.to_thread(
            erase, store, user_id, cluster=service.settings.clickhouse_cluster
        )
        done = result.as_dict()
        done["outside_the_store"] = await _forget_outside_the_store(service, result)
    except Exception as exc:  # a job that fails must say so, in its state and in the log
        log.error("erasure failed", extra={"job_id": job_id, "error": public_error(exc)},
                  exc_info=not isinstance(exc, StoreError))  # fmt: skip
        row = _job_row(job_id, subject, requested, "failed", 2, error=public_error(exc))
        with contextlib.suppress(StoreError):
            await asyncio.to_thread(store.insert_json_rows, "erasures", row)
        return
    await asyncio.to_thread(
        store.insert_json_rows, "erasures", _job_row(job_id, subject, requested, "done", 2, done)
    )
    await asyncio.to_thread(
        audit.record, store, actor=actor, action="user_deleted", subject=subject,
        detail={"job_id": job_id, **done}, request_id=request_id,
    )  # fmt: skip


async def _forget_outside_the_store(service: Service, result: ErasureResult) -> dict[str, int]:
    """What the process holds of the person besides the store: the prompt worker's similarity
    index (changed in its own thread, where the analysis runs), the live state (sessions,
    rate-limit windows, hot prompts, cached reports) and damaged spool records."""
    out = {"similarity_index": 0, "live_state": 0, "quarantined_spool_records": 0}
    if service.prompts is not None:
        index = service.prompts.index
        for one in result.ids:
            out["similarity_index"] += await service.background_calls.run(index.remove, one)
    out["live_state"] = await service.live.forget(result.ids, result.prompt_hashes)
    needles = [one.encode() for one in result.ids]
    out["quarantined_spool_records"] = await asyncio.to_thread(
        service.spool.drop_quarantined_with, needles
    )
    return out


async def _spool_stored(service: Service, timeout: float) -> bool:
    """Wait until the writer and the prompt worker are past what the spool held now."""
    end = service.spool.durable_end
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (
            service.spool.checkpoint >= end
            and service.spool.consumer_offset(PROMPTS_CONSUMER) >= end
        ):
            return True
        await asyncio.sleep(0.05)
    return False


@router.get(
    "/erasures/{job_id}",
    summary="The state of an erasure",
    responses={404: {"description": "No erasure with this job id"}},
    description="`running`, `done` (rows removed per table) or `failed` (with the error).",
)
async def erasure_status(request: Request, job_id: JobId) -> dict[str, Any]:
    _, store = _store(request)
    rows = await asyncio.to_thread(store.query_rows, JOB, {"job_id": job_id})
    if not rows:
        raise HTTPException(status_code=404, detail=f"no erasure {job_id}")
    [row] = rows
    return {
        "job_id": row["job_id"],
        "state": row["state"],
        "requested_at": row["requested_at"],
        "finished_at": row["finished_at"],
        "result": orjson.loads(row["removed"] or "{}"),
        "error": row["error"] or None,
    }


@router.get(
    "/users/{user_id}/export",
    summary="Everything held about a person, as NDJSON",
    description=(
        "Streamed: a header line saying what is included and from which tables, one line per "
        'row (`{"table": ..., "row": {...}}`: events incl. survey answers and feedback, '
        "prompt analysis with sanitised text, refused events, browser links, daily summary), "
        "and an `end` line with the rows per table. Recorded in the audit log."
    ),
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "NDJSON lines: header, one per row, end",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
async def export_user(request: Request, user_id: UserId) -> StreamingResponse:
    service, store = _store(request)
    await asyncio.to_thread(
        audit.record, store, actor=actor_of(request), action="user_exported",
        subject=_subject(service, user_id), request_id=request.headers.get("x-request-id", ""),
    )  # fmt: skip
    lines: Iterator[bytes] = export_lines(store, user_id)
    return StreamingResponse(
        iterate_in_threadpool(lines),
        media_type="application/x-ndjson",
        headers={"content-disposition": 'attachment; filename="export.ndjson"'},
    )


@router.get(
    "/audit",
    summary="The audit log: deletions, exports and API keys, newest first",
    description="Entries from `since` (default: 30 days ago), optionally of one `action`.",
)
async def audit_log(
    request: Request,
    since: Annotated[str | None, Query(pattern=ISO_TIME, description="ISO 8601 time")] = None,
    action: Annotated[str, Query(pattern="^(|" + "|".join(audit.ACTIONS) + ")$")] = "",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    _, store = _store(request)
    start = datetime.now(UTC) - timedelta(days=30)
    if since is not None:
        try:
            start = datetime.fromisoformat(since)
        except ValueError:
            raise HTTPException(422, [{"loc": ["query", "since"], "msg": "not a time",
                                       "type": "value_error"}]) from None  # fmt: skip
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
    entries = await asyncio.to_thread(audit.read, store, start, action, limit)
    return {"entries": entries}
