-- One pass over the range's events, per user, for every funnel at once: reports/journeys.py
-- puts one aggregate per step in place of /*aggregates*/ (field names from an allow-list,
-- every value a query parameter), each giving the times (epoch ms) at which the user could
-- reach that step:
--   a match step: the first 1,000 times of the events matching it,
--     groupArraySortedIf(1000)(t, <predicate>) (a funnel's first step: only the first, minIf);
--   an active-days step: the first time of the user's Nth active UTC day in the range, from
--     each day's first time (minResample over the day's index in the range, 0 for a day
--     without events).
SELECT user_id/*aggregates*/
FROM (
  SELECT
    user_id, toUnixTimestamp64Milli(timestamp) AS t, toUInt32(date - {start:Date}) AS day,
    event_type, event_category, event_action, event_label, page_path
  FROM analytics.frontend_events
  WHERE date BETWEEN {start:Date} AND {end:Date}
)
GROUP BY user_id
