-- The last few days' events again, sorted by day: what the reports read for today and
-- yesterday (the funnels walked on from the walks built last night, the page moves of today).
-- frontend_events is sorted by user (the spec's key), so reading one day of it costs a read of
-- its whole month (~80-100 ms on the bench); here a day is a partition. Only the columns those
-- reports read. An event is copied when it arrives if its day is at most three days back, and
-- rows go three days after their day, so today and yesterday are always whole here
-- (reports/common.py: events_table).
CREATE MATERIALIZED VIEW IF NOT EXISTS analytics.recent_events
ENGINE = MergeTree()
PARTITION BY date
ORDER BY (date, user_id, timestamp)
TTL date + INTERVAL 3 DAY
SETTINGS non_replicated_deduplication_window = 1000
POPULATE
AS SELECT
  toDate(timestamp) AS date, timestamp, user_id, session_id, event_id,
  event_type, event_category, event_action, event_label, page_path
FROM analytics.frontend_events
WHERE toDate(timestamp) >= today() - 3;
