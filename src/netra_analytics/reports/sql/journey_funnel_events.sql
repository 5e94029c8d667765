-- One pass over the range's events, per user: for each of a funnel's match steps, the first
-- 1,000 times (epoch ms) of the events matching it, as groupArraySortedIf(1000)(t, <predicate>)
-- put in place of /*aggregates*/ by reports/journeys.py (field names from an allow-list,
-- every value a query parameter).
SELECT user_id/*aggregates*/
FROM (
  SELECT
    user_id, toUnixTimestamp64Milli(timestamp) AS t,
    event_type, event_category, event_action, event_label, page_path
  FROM analytics.frontend_events
  WHERE date BETWEEN {start:Date} AND {end:Date}
)
GROUP BY user_id
