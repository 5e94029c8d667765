-- Funnel walks computed ahead (reports/funnel_walks.py): for each start day of the last 90,
-- each user's walk through every funnel over the days from that start to a horizon (a
-- finished UTC day), so that a funnel report reads one row per user instead of walking every
-- event of its range. A walk only moves forward in time, so the walk of a range that ends
-- before the horizon is the stored one with later times dropped, and a range that ends after
-- it goes on from the stored walk through the newer events. `config` is a hash of the funnel
-- definitions (another definition never reads these walks); `generation` (the build's start,
-- microseconds since the epoch) tells one build from another; builds expire three days after
-- they ran.
CREATE TABLE IF NOT EXISTS analytics.funnel_walks (
  config String,
  horizon Date,
  generation UInt64,
  start Date,
  user_id String,
  times Array(UInt64) CODEC(ZSTD(3)),
  day_firsts Array(UInt64) CODEC(ZSTD(3))
)
ENGINE = MergeTree()
PARTITION BY horizon
ORDER BY (config, generation, start, user_id)
TTL toDateTime(intDiv(generation, 1000000)) + INTERVAL 3 DAY;

-- One row per finished build of funnel_walks, written after its walks: what the data was
-- when the build began, per day from first_start to horizon: the events (activity_rollup)
-- and the prompt rows written (prompt_rows_daily). A report uses a build's walks up to the
-- last day of its range whose counts are still the same (events and prompt rows are only
-- ever added, so equal counts mean the same rows), and walks the days after it from the
-- events.
CREATE TABLE IF NOT EXISTS analytics.funnel_builds (
  config String,
  horizon Date,
  generation UInt64,
  first_start Date,
  events Array(UInt64),
  prompts Array(UInt64),
  seconds Float64
)
ENGINE = MergeTree()
ORDER BY (config, horizon, generation)
TTL toDateTime(intDiv(generation, 1000000)) + INTERVAL 3 DAY;

-- Rows written to prompt_analytics per UTC day of the prompt: it only grows (a new prompt or
-- a new version of one), unlike a count of prompt_analytics, which merges shrink.
CREATE MATERIALIZED VIEW IF NOT EXISTS analytics.prompt_rows_daily
ENGINE = SummingMergeTree()
ORDER BY date
TTL date + INTERVAL 2 YEAR
SETTINGS non_replicated_deduplication_window = 1000
POPULATE
AS SELECT toDate(timestamp) AS date, count() AS rows
FROM analytics.prompt_analytics
GROUP BY date;
