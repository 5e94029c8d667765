-- Privacy operations (issue 16). audit_log: every deletion, export, key creation and
-- revocation: when, who (API key name or token subject), what, which person as a keyed hash
-- (HMAC-SHA256 with the service's secret: it proves what was done to whom to someone who
-- knows the id, and names nobody to anyone else), and counts; kept two years.
CREATE TABLE IF NOT EXISTS analytics.audit_log (
  at DateTime64(3),
  actor String,
  action LowCardinality(String),
  subject String,
  detail String,
  request_id String
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY at
TTL toDateTime(at) + INTERVAL 2 YEAR;

-- One row per state of each person's erasure (the newest version is the state): the job a
-- DELETE answers with, readable while it runs, and the writer's list of people whose events
-- still in the spool must not be stored (`subject`, `requested_at`).
CREATE TABLE IF NOT EXISTS analytics.erasures (
  job_id String,
  subject String,
  requested_at DateTime64(3),
  state LowCardinality(String),
  removed String,
  finished_at Nullable(DateTime64(3)),
  error String,
  version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY job_id
TTL toDateTime(requested_at) + INTERVAL 2 YEAR;
