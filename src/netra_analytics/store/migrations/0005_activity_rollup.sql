-- Activity of all users together, per UTC day and per quarter hour, kept by ClickHouse as
-- events arrive: what the user-activity report reads when it is not about one user, and the
-- prompts report's follow-up rate.
-- The per-user summary (0002) keeps a row per user and day; counting active users over a
-- month of it means hashing millions of rows (measured 300-500 ms at 10 M events). Here each
-- bucket keeps the set of its users' hashes (uniqExact state), so a 30-day range merges 30 day
-- sets (~40 ms), and hours or other time zones merge quarter hours (~150 ms): every time zone's
-- offset is a whole number of quarter hours. Each event is counted once per resolution (one
-- ARRAY JOIN, so the counters are defined once). Sums live in SimpleAggregateFunction columns,
-- the users in AggregateFunction(uniqExact): read them with sum() and uniqExactMerge().
CREATE MATERIALIZED VIEW IF NOT EXISTS analytics.activity_rollup
(
  resolution LowCardinality(String),
  bucket DateTime('UTC'),
  total_events SimpleAggregateFunction(sum, UInt64),
  chat_interactions SimpleAggregateFunction(sum, UInt64),
  threads_created SimpleAggregateFunction(sum, UInt64),
  threads_completed SimpleAggregateFunction(sum, UInt64),
  feature_interactions SimpleAggregateFunction(sum, UInt64),
  user_prompts SimpleAggregateFunction(sum, UInt64),
  follow_up_prompts SimpleAggregateFunction(sum, UInt64),
  tokens_consumed SimpleAggregateFunction(sum, Float64),
  response_time_sum_ms SimpleAggregateFunction(sum, Float64),
  response_time_count SimpleAggregateFunction(sum, UInt64),
  users AggregateFunction(uniqExact, UInt64)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(bucket)
ORDER BY (resolution, bucket)
TTL toDate(bucket) + INTERVAL 2 YEAR
SETTINGS non_replicated_deduplication_window = 1000
POPULATE
AS SELECT
  resolution,
  bucket,
  count() AS total_events,
  countIf(event_type = 'chat_interaction') AS chat_interactions,
  countIf(event_type = 'thread_lifecycle' AND event_action = 'created') AS threads_created,
  countIf(event_type = 'thread_lifecycle' AND event_action = 'completed') AS threads_completed,
  countIf(event_type = 'feature_usage') AS feature_interactions,
  countIf(event_type = 'chat_interaction' AND event_action = 'user_prompt') AS user_prompts,
  countIf(event_type = 'chat_interaction' AND event_action = 'user_prompt'
          AND JSONExtractBool(properties, 'is_follow_up')) AS follow_up_prompts,
  sumIf(event_value, event_type = 'chat_interaction') AS tokens_consumed,
  sumIf(event_value, event_type = 'performance_metric') AS response_time_sum_ms,
  countIf(event_type = 'performance_metric') AS response_time_count,
  uniqExactState(cityHash64(user_id)) AS users
FROM analytics.frontend_events
ARRAY JOIN
  ['day', 'quarter_hour'] AS resolution,
  [toStartOfDay(timestamp, 'UTC'), toStartOfFifteenMinutes(timestamp, 'UTC')] AS bucket
GROUP BY resolution, bucket;
