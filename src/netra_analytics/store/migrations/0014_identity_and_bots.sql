-- Identity (issue 12): every event keeps the browser's anonymous id beside the id it is stored
-- under (user_id: the signed-in person's id, or the anonymous id for a visitor who has not
-- signed in). An event carrying both is an identify; identity_links keeps each link of a
-- browser to a person, with when it was first and last seen, for as long as the events.
ALTER TABLE analytics.frontend_events
  ADD COLUMN IF NOT EXISTS anonymous_id String DEFAULT '' AFTER user_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS analytics.identity_links
(
  anonymous_id String,
  user_id String,
  first_linked SimpleAggregateFunction(min, DateTime64(3)),
  last_linked SimpleAggregateFunction(max, DateTime64(3))
)
ENGINE = AggregatingMergeTree()
ORDER BY (anonymous_id, user_id)
TTL toDateTime(last_linked) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000
AS SELECT anonymous_id, user_id, min(timestamp) AS first_linked, max(timestamp) AS last_linked
FROM analytics.frontend_events
WHERE anonymous_id != '' AND anonymous_id != user_id
GROUP BY anonymous_id, user_id;

-- Events from known bots and crawlers (user agent on the crawler-user-agents list), kept out
-- of frontend_events so that no report or view counts them, and kept 30 days to be counted.
CREATE TABLE IF NOT EXISTS analytics.bot_events (
  event_id UUID,
  timestamp DateTime64(3),
  user_id String,
  anonymous_id String,
  session_id String,
  event_type LowCardinality(String),
  event_category LowCardinality(String),
  event_action LowCardinality(String),
  event_label LowCardinality(String),
  event_value Float64,
  properties String,
  user_agent String,
  ip_address String,
  country_code LowCardinality(String),
  page_path LowCardinality(String),
  page_title String,
  referrer String,
  gtm_container_id LowCardinality(String),
  environment LowCardinality(String),
  app_version LowCardinality(String)
)
ENGINE = MergeTree()
PARTITION BY toDate(timestamp)
ORDER BY (user_id, timestamp, event_id)
TTL toDateTime(timestamp) + INTERVAL 30 DAY
SETTINGS non_replicated_deduplication_window = 1000;
