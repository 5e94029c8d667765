-- User segments, each person with an event in [from, to) in exactly one:
--   new:     their first event ever (user_first_seen, UTC day) is on or after the range's
--            first UTC day;
--   power:   otherwise, at least 25 events per day of the range;
--   regular: otherwise, 5 to 25 events per day of the range;
--   casual:  fewer than 5 events per day of the range.
-- A range shorter than a day counts as one day, so an hour's heavy user is not inflated 24x.
WITH greatest(1, dateDiff('second', {from:DateTime64(3)}, {to:DateTime64(3)}) / 86400) AS days
SELECT
  multiIf(is_new, 'new', events / days >= 25, 'power', events / days >= 5, 'regular', 'casual')
    AS segment,
  count() AS users
FROM (
  SELECT
    user_id,
    count() AS events,
    user_id IN (
      SELECT user_id
      FROM analytics.user_first_seen
      GROUP BY user_id
      HAVING min(first_date) >= toDate({from:DateTime64(3)})
    ) AS is_new
  FROM analytics.frontend_events
  WHERE /* events_in_range */
  GROUP BY user_id
)
GROUP BY segment
ORDER BY users DESC, segment
