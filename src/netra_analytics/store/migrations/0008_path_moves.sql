-- Page moves per UTC day, kept by the journeys report as it computes them (reports/paths.py):
-- finding each session's previous page means grouping every event of a range by session
-- (~400 ms for 30 days of the 10 M-event bench), so a day that can no longer change is
-- computed once. A day is stored with the event counts it was computed from (its own and the
-- day before's, from activity_rollup) and used only while those counts are unchanged; late
-- events make it be computed again (a higher `generation`, the newest is the one read).
-- Each stored day has a marker row (empty pages, no moves), so that a day without moves is
-- known too.
CREATE TABLE IF NOT EXISTS analytics.path_moves (
  date Date,
  generation UInt64,
  events_before UInt64,
  events UInt64,
  from_page String,
  to_page String,
  moves UInt64
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(date)
ORDER BY (date, generation, from_page, to_page)
TTL date + INTERVAL 2 YEAR;
