"""`netra-analytics loadtest`: realistic open-loop traffic against a running service, and what
it stored of it.

- `traffic`: the requests, browsers running the tag (the demo's events, byte templates).
- `runner`: `run(url, rate=..., duration=..., batch=...)` -> `LoadTestResult`, usable as a
  library (the benchmarks drive it) and by the CLI; `table(result)` for a terminal.
- `routes`: the service's admin endpoint the read-back uses,
  `GET /api/analytics/admin/loadtest/{run_id}`.

How loss is measured: every event of a run carries the run's marker, `context.environment` =
`loadtest` and a session id starting `loadtest-<run id>-` (both stored columns of
`frontend_events`). After the run the command waits until the service's spool is empty
(`/health/ready`: every acknowledged event has gone to the store) and the run's stored count
has stopped changing, then `loss` = events acknowledged (the `accepted` of the 202 replies) -
events stored under the marker, and `duplicates` = stored - distinct (user_id, event_id).
"""

from netra_analytics.loadtest.runner import LoadTestError, LoadTestResult, run, table
from netra_analytics.loadtest.traffic import ENVIRONMENT, session_prefix

__all__ = ["ENVIRONMENT", "LoadTestError", "LoadTestResult", "run", "session_prefix", "table"]
