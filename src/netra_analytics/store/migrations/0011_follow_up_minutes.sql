-- User prompts, and the follow-up questions among them, per UTC minute, kept by ClickHouse as
-- events arrive: the prompts report's follow-up rate over its window, which starts at a whole
-- minute. activity_rollup's quarter hours (0005) left a partial first quarter hour to count
-- from the events, and a few minutes of events cost a scan of their whole monthly partition
-- (~60 ms: the table is sorted by user, not time); its user_prompts and follow_up_prompts
-- columns are no longer read.
CREATE MATERIALIZED VIEW IF NOT EXISTS analytics.follow_up_minutes
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY minute
TTL toDate(minute) + INTERVAL 2 YEAR
SETTINGS non_replicated_deduplication_window = 1000
POPULATE
AS SELECT
  toDateTime(toStartOfMinute(timestamp), 'UTC') AS minute,
  count() AS user_prompts,
  countIf(JSONExtractBool(properties, 'is_follow_up')) AS follow_up_prompts
FROM analytics.frontend_events
WHERE event_type = 'chat_interaction' AND event_action = 'user_prompt'
GROUP BY minute;
