"""Every Prometheus metric the service exports, declared once (served at `/metrics`).

The product spec's Monitoring section names five metrics; here they are under Prometheus
conventions (base units, `_total` for counters). The README's metrics table lists each with
its labels:

- `event_ingestion_rate`: `netra_event_ingestion_rate{outcome}` (events per second over the
  last 60 s) and the counter behind it, `netra_event_ingestion_events_total{event_type, outcome}`.
- `processing_latency`: `netra_processing_latency_seconds{since}`, from the client's capture
  (`capture`) or the request's arrival (`receipt`) to the insert that stored the event.
- `query_performance`: `netra_query_performance_seconds{kind, name}`, per report and panel.
- `storage_usage`: `netra_storage_usage_bytes{component, table}`: ClickHouse per table, Redis,
  spool.
- `api_availability`: `netra_api_uptime_seconds`, `netra_api_requests_total{route,
  status_class}` and `netra_api_availability_ratio`.

Several processes (`ANALYTICS_WORKERS` > 1): when `PROMETHEUS_MULTIPROC_DIR` is set before this
module is imported, prometheus_client keeps every value in a file per process and `/metrics`
sums them (`exposition`). Each gauge says how its processes' values combine
(`multiprocess_mode`, used only then); the live modes drop a process's values once the launcher
calls `prometheus_client.multiprocess.mark_process_dead(pid)` for it.

Per-process state here (`IngestionRate`, `Availability`) is read from this process's own
counters and requests; with several processes each publishes its share and the gauges' modes
combine them.
"""

from __future__ import annotations

import bisect
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

# --- the spec's metrics ---------------------------------------------------------------------

# outcome: accepted, imported, bot, rate_limited, no_consent, or the rejection reason
# (invalid_event, unknown_event_type, invalid_properties, too_old, duplicate_event_id,
# beyond_retention, in_future). `EVENTS_RECEIVED` keeps its Python name for the callers.
EVENTS_RECEIVED = Counter(
    "netra_event_ingestion_events",
    "Events received, by event type and outcome (accepted, imported, bot, rate_limited, "
    "no_consent, or the rejection reason).",
    ["event_type", "outcome"],
)
INGESTION_RATE = Gauge(
    "netra_event_ingestion_rate",
    "Events per second over the last 60 s, by outcome (the spec's event_ingestion_rate).",
    ["outcome"],
    multiprocess_mode="livesum",
)
PROCESSING_LATENCY = Histogram(
    "netra_processing_latency_seconds",
    "From the client's capture of an event (since=capture: its stored, skew-corrected "
    "timestamp) or the request's arrival (since=receipt) to the insert that stored it.",
    ["since"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
QUERY_PERFORMANCE = Histogram(
    "netra_query_performance_seconds",
    "Time to answer a report or panel request (kind=report|panel, name=its id), cache hits "
    "included; requests refused before a query ran (4xx) are left out.",
    ["kind", "name"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
STORAGE_USAGE = Gauge(
    "netra_storage_usage_bytes",
    "Bytes used: component=clickhouse per table (active parts on disk), redis (used_memory), "
    "spool (the spool directories).",
    ["component", "table"],
    # Every process reads the same store, Redis and spool root: the largest is the newest.
    multiprocess_mode="livemax",
)
API_REQUESTS = Counter(
    "netra_api_requests",
    "HTTP requests answered, by route template and status class (2xx..5xx).",
    ["route", "status_class"],
)
API_UPTIME = Gauge(
    "netra_api_uptime_seconds",
    "Seconds since the service's HTTP process started.",
    multiprocess_mode="livemax",
)
API_AVAILABILITY = Gauge(
    "netra_api_availability_ratio",
    "Share of requests over the last 5 minutes not answered 5xx (1 when idle); with several "
    "processes, the lowest of them.",
    multiprocess_mode="livemin",
)

# --- the pipeline ---------------------------------------------------------------------------

REQUESTS = Counter(
    "netra_ingest_requests_total", "Requests to the events endpoint, by status code.", ["status"]
)
EVENTS_WRITTEN = Counter("netra_events_written_total", "Events inserted into frontend_events.")
STORE_WRITE_FAILURES = Counter(
    "netra_store_write_failures_total", "Batch inserts that failed and will be retried."
)
BATCH_EVENTS = Histogram(
    "netra_batch_events",
    "Events per batch the writer inserted (frontend_events and bot_events together).",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000),
)
BATCH_SECONDS = Histogram(
    "netra_batch_write_seconds",
    "Time to write one batch to ClickHouse (lookup and inserts): the flush duration.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SPOOL_FSYNC_SECONDS = Histogram(
    "netra_spool_fsync_seconds",
    "Time to make one group of spool appends durable (write and fdatasync): every accepted "
    "request waits for one, so a slow disk shows here before it shows in request latency.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
SPOOL_BACKLOG = Gauge(
    "netra_spool_backlog_bytes",
    "Bytes in the spool not yet stored.",
    multiprocess_mode="livesum",  # each process has its own spool
)
PROMPT_WORKER_LAG = Gauge(
    "netra_prompt_worker_lag_seconds",
    "How far the prompt analysis is behind the stored events: seconds since the oldest stored "
    "request it has not analysed arrived (0 when caught up).",
    multiprocess_mode="livemax",
)
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
    "netra_funnel_walk_build_seconds",
    "How long the last build of the funnel walks took.",
    multiprocess_mode="livemax",
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

# --- health (`health.py`) -------------------------------------------------------------------

HEALTH_STATUS = Gauge(
    "netra_health_status",
    "Each health check: 0 ok, 1 degraded, 2 failing (check=clickhouse, redis, freshness, "
    "tag_heartbeat, spool, writer); with several processes, the worst.",
    ["check"],
    multiprocess_mode="livemax",
)
DATA_FRESHNESS = Gauge(
    "netra_data_freshness_seconds",
    "Seconds since the newest stored event's timestamp (absent until one is stored).",
    multiprocess_mode="livemin",  # the process that looked last saw the newest
)
TAG_HEARTBEAT_AGE = Gauge(
    "netra_tag_heartbeat_age_seconds",
    "Seconds since the browser tag of each GTM container last sent its heartbeat.",
    ["container"],
    multiprocess_mode="livemin",
)

HEALTH_LEVELS = {"ok": 0, "degraded": 1, "failing": 2}

# --- exposition -----------------------------------------------------------------------------


def observe_many(histogram: Any, amounts: Iterable[float]) -> None:
    """`histogram.observe(amount)` for every amount, in one pass per bucket: the writer observes
    each stored event's latency, and one at a time 10,000 held its event loop for 16 ms with
    multiprocess values (mmap writes), 0.9 ms this way (5.4 and 1.5 ms in one process).
    `histogram`: a Histogram without labels, or one label set's child. prometheus_client has
    no bulk observe; this sets the same values its `observe` does (0.26, pinned:
    `_upper_bounds`, and `_buckets[i]` counting the amounts whose first bound at or above
    them is bound i), which `test_metrics` compares."""
    ordered = sorted(amounts)
    if not ordered:
        return
    below = 0
    for bound, bucket in zip(histogram._upper_bounds, histogram._buckets, strict=True):
        upto = bisect.bisect_right(ordered, bound)
        if upto > below:
            bucket.inc(upto - below)
            below = upto
    histogram._sum.inc(sum(ordered))


def exposition() -> tuple[bytes, str]:
    """The text exposition of every metric and its content type: this process's registry, or,
    when `PROMETHEUS_MULTIPROC_DIR` is set, every process's values combined (the directory's
    files, read per scrape as prometheus_client's multiprocess mode prescribes)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# --- rates kept per process -----------------------------------------------------------------

RATE_WINDOW_SECONDS = 60


class IngestionRate:
    """`netra_event_ingestion_rate{outcome}` from the counter behind it, sampled once a second.

    The request path does nothing more than increment the counter; `sample()` (once a second,
    from `health.refresh_forever`) keeps the counter's totals per outcome for the last 61
    seconds and sets the gauge to (total now - total 60 s ago) / 60 (less while the process
    is younger than a minute: its age). Also keeps since when accepted events have been
    arriving without a pause of `quiet_seconds` (`arriving_since`: data freshness only matters
    while events arrive, and only as long as they have)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, quiet_seconds: float = 900.0
    ) -> None:
        self._clock = clock
        self.quiet_seconds = quiet_seconds
        self._samples: deque[tuple[float, dict[str, float]]] = deque(maxlen=RATE_WINDOW_SECONDS + 1)
        # Events counted before this process's monitor started are not "arriving".
        self._accepted_total = _totals().get("accepted", 0.0)
        self.last_accepted: float | None = None  # by `clock`
        self.arriving_since: float | None = None  # start of the current run of arrivals

    def arriving_for(self) -> float | None:
        """Seconds events have been arriving without a quiet pause; None when quiet now."""
        now = self._clock()
        if self.last_accepted is None or now - self.last_accepted > self.quiet_seconds:
            return None
        return now - self.arriving_since if self.arriving_since is not None else None

    def sample(self) -> dict[str, float]:
        """Take a sample now; the rate per outcome over the window (also set on the gauge)."""
        now = self._clock()
        totals = _totals()
        accepted = totals.get("accepted", 0.0)  # what frontend_events' freshness reflects
        if accepted > self._accepted_total:
            if self.last_accepted is None or now - self.last_accepted > self.quiet_seconds:
                self.arriving_since = now
            self.last_accepted = now
        self._accepted_total = accepted
        if not self._samples or now - self._samples[-1][0] >= 1.0:  # one kept per second
            self._samples.append((now, totals))
        first_at, first = self._samples[0]
        span = max(1.0, now - first_at)
        rates = {
            outcome: max(0.0, total - first.get(outcome, 0.0)) / span
            for outcome, total in totals.items()
        }
        for outcome, rate in rates.items():
            INGESTION_RATE.labels(outcome).set(rate)
        return rates


def _totals() -> dict[str, float]:
    """This process's ingestion counter summed per outcome."""
    totals: dict[str, float] = {}
    for family in EVENTS_RECEIVED.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                outcome = sample.labels["outcome"]
                totals[outcome] = totals.get(outcome, 0.0) + sample.value
    return totals


AVAILABILITY_BUCKET_SECONDS = 10
AVAILABILITY_BUCKETS = 30  # 5 minutes


class Availability:
    """Requests and 5xx replies over the last 5 minutes, in 10-second buckets (a ring: no
    allocation per request, two integer additions)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._epoch = [-1] * AVAILABILITY_BUCKETS
        self._requests = [0] * AVAILABILITY_BUCKETS
        self._errors = [0] * AVAILABILITY_BUCKETS

    def record(self, server_error: bool) -> None:
        epoch = int(self._clock()) // AVAILABILITY_BUCKET_SECONDS
        slot = epoch % AVAILABILITY_BUCKETS
        if self._epoch[slot] != epoch:
            self._epoch[slot], self._requests[slot], self._errors[slot] = epoch, 0, 0
        self._requests[slot] += 1
        if server_error:
            self._errors[slot] += 1

    def ratio(self) -> float:
        """Share of the window's requests not answered 5xx; 1.0 without requests."""
        oldest = int(self._clock()) // AVAILABILITY_BUCKET_SECONDS - AVAILABILITY_BUCKETS + 1
        requests = errors = 0
        for slot in range(AVAILABILITY_BUCKETS):
            if self._epoch[slot] >= oldest:
                requests += self._requests[slot]
                errors += self._errors[slot]
        return 1.0 if requests == 0 else (requests - errors) / requests
