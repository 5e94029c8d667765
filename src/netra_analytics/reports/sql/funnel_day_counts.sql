-- Per UTC day from {first} to {last}: the events stored (activity_rollup), the prompt rows
-- written (prompt_rows_daily), and the events stored under an anonymous id that is now linked
-- to a person (person_links; frontend_events is sorted by user, so only those browsers are
-- read). All three only grow (a link is never undone), so equal counts mean the same rows
-- walked as the same people: what a build of funnel_walks is checked against
-- (reports/funnel_walks.py). Days without any are left out.
SELECT
  toString(day) AS day,
  sum(events) AS events,
  sum(prompts) AS prompts,
  sum(linked) AS linked
FROM (
  SELECT toDate(bucket) AS day, total_events AS events, toUInt64(0) AS prompts,
    toUInt64(0) AS linked
  FROM analytics.activity_rollup
  WHERE resolution = 'day' AND toDate(bucket) BETWEEN {first:Date} AND {last:Date}
  UNION ALL
  SELECT date, toUInt64(0), rows, toUInt64(0)
  FROM analytics.prompt_rows_daily
  WHERE date BETWEEN {first:Date} AND {last:Date}
  UNION ALL
  SELECT date, toUInt64(0), toUInt64(0), toUInt64(1)
  FROM analytics.frontend_events
  WHERE date BETWEEN {first:Date} AND {last:Date}
    AND user_id GLOBAL IN (SELECT anonymous_id FROM analytics.person_links)
)
GROUP BY day
