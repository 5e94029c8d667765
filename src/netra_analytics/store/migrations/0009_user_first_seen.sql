-- The day of each user's first event, kept by ClickHouse as events arrive: the weekly cohorts
-- (journeys, ai-spend) read it instead of finding every user's first event among all stored
-- events (a scan of the whole table per report), and it outlives the events' 90-day TTL, so a
-- user who comes back after their first events expired is not taken for a new one.
-- Rows of one user are merged whenever ClickHouse gets round to it: read with min() GROUP BY.
CREATE MATERIALIZED VIEW IF NOT EXISTS analytics.user_first_seen
(
  user_id String,
  first_date SimpleAggregateFunction(min, Date)
)
ENGINE = AggregatingMergeTree()
ORDER BY user_id
TTL first_date + INTERVAL 2 YEAR
SETTINGS non_replicated_deduplication_window = 1000
POPULATE
AS SELECT user_id, min(toDate(timestamp)) AS first_date
FROM analytics.frontend_events
GROUP BY user_id;
