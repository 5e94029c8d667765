"""Every Prometheus metric the service exports, declared once (served at `/metrics`).

Names follow the spec's Monitoring section: `event_ingestion_rate` is
`rate(netra_events_received_total[1m])`, `processing_latency` is
`netra_processing_latency_seconds`, `storage_usage` is `netra_spool_backlog_bytes` beside
ClickHouse's own tables.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_RECEIVED = Counter(
    "netra_events_received_total",
    "Events received, by event type and outcome (accepted or the rejection reason).",
    ["event_type", "outcome"],
)
REQUESTS = Counter(
    "netra_ingest_requests_total", "Requests to the events endpoint, by status code.", ["status"]
)
EVENTS_WRITTEN = Counter("netra_events_written_total", "Events inserted into frontend_events.")
STORE_WRITE_FAILURES = Counter(
    "netra_store_write_failures_total", "Batch inserts that failed and will be retried."
)
PROCESSING_LATENCY = Histogram(
    "netra_processing_latency_seconds",
    "From the request's arrival to its events being stored in ClickHouse.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
BATCH_SECONDS = Histogram(
    "netra_batch_write_seconds",
    "Time to write one batch to ClickHouse (lookup and inserts).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SPOOL_BACKLOG = Gauge("netra_spool_backlog_bytes", "Bytes in the spool not yet stored.")
LIVE_STATE_FALLBACKS = Counter(
    "netra_live_state_fallbacks_total",
    "Live-state operations served by this process because Redis was unavailable "
    "(take: rate limits enforced per process).",
    ["operation"],
)
RATE_LIMITED = Counter("netra_events_rate_limited_total", "Events refused by the per-user limit.")
LIVE_UPDATES_DROPPED = Counter(
    "netra_live_updates_dropped_total",
    "Live-state updates skipped because too many were already waiting.",
)
FUNNEL_WALK_BUILDS = Counter(
    "netra_funnel_walk_builds_total",
    "Builds of the funnel walks computed ahead for the journeys and ai-spend reports.",
)
FUNNEL_WALK_BUILD_SECONDS = Gauge(
    "netra_funnel_walk_build_seconds", "How long the last build of the funnel walks took."
)
SPOOL_QUARANTINED = Counter(
    "netra_spool_quarantined_records_total",
    "Spool records that failed their checksum, set aside in spool/quarantine/ (the records "
    "after them are stored as usual).",
)
PROMPT_SPOOL_SKIPPED = Counter(
    "netra_prompt_spool_skipped_bytes_total",
    "Spool bytes the prompt worker passed over after falling more than the spool's cap behind "
    "(their prompts are recovered from frontend_events).",
)
PROMPTS_RECOVERED = Counter(
    "netra_prompts_recovered_total",
    "prompt_analytics rows written for prompts recovered from frontend_events after a skip.",
)
WORKER_CRASHES = Counter(
    "netra_worker_crashes_total",
    "Background workers (writer, prompts, funnel_walks) that stopped on an error and were "
    "restarted.",
    ["worker"],
)
