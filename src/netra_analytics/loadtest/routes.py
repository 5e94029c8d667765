"""The load test's read-back: how many of a run's events the store holds.

    GET /api/analytics/admin/loadtest/{run_id}   admin only (`auth.ADMIN_PREFIXES`)

A run's events are those of `frontend_events` with `environment` = `loadtest` and a session id
that starts with `loadtest-<run_id>-` (see `loadtest.traffic`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel

from netra_analytics.loadtest.traffic import ENVIRONMENT, session_prefix
from netra_analytics.reports.common import ready_store, run_report

router = APIRouter(prefix="/api/analytics/admin", tags=["admin"])

# `environment` first: ClickHouse reads that LowCardinality column before the session ids
# (PREWHERE), so the count touches only load-test rows' sessions.
STORED_OF_RUN = """
SELECT count() AS stored, uniqExact(user_id, event_id) AS distinct_events
FROM analytics.frontend_events
WHERE environment = {environment:String} AND startsWith(session_id, {prefix:String})
"""
RunId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="12 hex digits")]


class StoredOfRun(BaseModel):
    run_id: str
    environment: str
    stored: int  # rows of the run in frontend_events
    distinct_events: int  # distinct (user_id, event_id) among them
    duplicates: int  # stored - distinct_events


@router.get(
    "/loadtest/{run_id}",
    summary="Events of a load-test run stored in frontend_events (for its loss figure)",
    description=(
        "Counts the rows of `frontend_events` carrying run `run_id`'s marker (environment "
        "`loadtest`, session id `loadtest-<run_id>-...`): `stored`, `distinct_events` (distinct "
        "user id and event id) and `duplicates` (the difference). Events still in the spool "
        "are not counted: `/health/ready` shows its backlog. Admin only."
    ),
)
async def stored_of_run(request: Request, run_id: RunId) -> StoredOfRun:
    params = {"environment": ENVIRONMENT, "prefix": session_prefix(run_id)}
    rows = await run_report(request, ready_store(request).query_rows, STORED_OF_RUN, params)
    stored, distinct = int(rows[0]["stored"]), int(rows[0]["distinct_events"])
    return StoredOfRun(
        run_id=run_id,
        environment=ENVIRONMENT,
        stored=stored,
        distinct_events=distinct,
        duplicates=stored - distinct,
    )
