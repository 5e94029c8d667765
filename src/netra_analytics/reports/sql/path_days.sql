-- For each day from {start} to {end}: the events stored on it and on the day before (from
-- activity_rollup), and the newest stored computation of its page moves with the counts it
-- was computed from (generation 0 when none).
SELECT
  toString(days.date) AS date,
  days.events_before AS events_before,
  days.events AS events,
  stored.newest AS generation,
  stored.events_before AS stored_events_before,
  stored.events AS stored_events
FROM (
  SELECT
    day AS date,
    sumIf(total_events, toDate(bucket) = day - 1) AS events_before,
    sumIf(total_events, toDate(bucket) = day) AS events
  FROM analytics.activity_rollup
  ARRAY JOIN [toDate(bucket), toDate(bucket) + 1] AS day
  WHERE resolution = 'day'
    AND toDate(bucket) BETWEEN {start:Date} - 1 AND {end:Date}
    AND day BETWEEN {start:Date} AND {end:Date}
  GROUP BY day
) AS days
LEFT JOIN (
  SELECT
    date,
    max(generation) AS newest,
    argMax(events_before, generation) AS events_before,
    argMax(events, generation) AS events
  FROM analytics.path_moves
  WHERE date BETWEEN {start:Date} AND {end:Date}
  GROUP BY date
) AS stored ON days.date = stored.date
ORDER BY date
