-- Per UTC day from {first} to {last}: the events stored (activity_rollup) and the prompt rows
-- written (prompt_rows_daily). Both only grow, so equal counts mean the same rows: what a
-- build of funnel_walks is checked against (reports/funnel_walks.py). Days without either
-- are left out.
SELECT toString(day) AS day, events.n AS events, prompts.n AS prompts
FROM (
  SELECT toDate(bucket) AS day, sum(total_events) AS n
  FROM analytics.activity_rollup
  WHERE resolution = 'day' AND toDate(bucket) BETWEEN {first:Date} AND {last:Date}
  GROUP BY day
) AS events
FULL OUTER JOIN (
  SELECT date AS day, sum(rows) AS n
  FROM analytics.prompt_rows_daily
  WHERE date BETWEEN {first:Date} AND {last:Date}
  GROUP BY day
) AS prompts USING day
