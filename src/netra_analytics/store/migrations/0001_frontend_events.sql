-- Every accepted event, one row each; the spec's table, column for column.
-- Additions to the spec, each for a measured need:
--   idx_event_id: the batch writer looks up event ids before inserting, so that client retries
--     and replays after a crash never store an event twice;
--   TTL on toDateTime(timestamp): some ClickHouse versions refuse a TTL on DateTime64;
--   non_replicated_deduplication_window: lets insert_deduplication_token work on a single node.
CREATE DATABASE IF NOT EXISTS analytics;

CREATE TABLE IF NOT EXISTS analytics.frontend_events (
  event_id UUID DEFAULT generateUUIDv4(),
  timestamp DateTime64(3) DEFAULT now(),
  user_id String,
  session_id String,
  event_type String,
  event_category String,
  event_action String,
  event_label String,
  event_value Float64,
  properties String,
  user_agent String,
  ip_address String,
  country_code String,
  page_path String,
  page_title String,
  referrer String,
  gtm_container_id String,
  environment String,
  app_version String,
  date Date DEFAULT toDate(timestamp),
  hour UInt8 DEFAULT toHour(timestamp),
  INDEX idx_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(timestamp)
ORDER BY (user_id, timestamp, event_id)
TTL toDateTime(timestamp) + INTERVAL 90 DAY
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 1000;
