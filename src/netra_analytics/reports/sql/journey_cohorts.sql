-- Weekly cohorts (the Monday of a user's first event ever, from user_first_seen) and the weeks
-- of the range they were active in.
SELECT first.cohort AS cohort, toMonday(e.date) AS week, uniqExact(cityHash64(e.user_id)) AS users
FROM analytics.frontend_events AS e
INNER JOIN (
  SELECT user_id, toMonday(min(first_date)) AS cohort
  FROM analytics.user_first_seen
  GROUP BY user_id
  HAVING cohort BETWEEN toMonday({start:Date}) AND {end:Date}
) AS first ON e.user_id = first.user_id
WHERE e.date BETWEEN {start:Date} AND {end:Date}
GROUP BY cohort, week
ORDER BY cohort, week
