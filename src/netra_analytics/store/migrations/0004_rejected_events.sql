-- Events the service refused, with the reason, kept a week so integrators can debug their tags.
-- `event` is the event as sent, with free-text fields redacted (see privacy/redact.py).
CREATE TABLE IF NOT EXISTS analytics.rejected_events (
  received_at DateTime64(3),
  user_id String,
  session_id String,
  event_index UInt16,
  event_type String,
  reason LowCardinality(String),
  errors String,
  event String,
  user_agent String,
  gtm_container_id String,
  app_version String
)
ENGINE = MergeTree()
PARTITION BY toDate(received_at)
ORDER BY (received_at, user_id)
TTL toDateTime(received_at) + INTERVAL 7 DAY
SETTINGS non_replicated_deduplication_window = 1000;
