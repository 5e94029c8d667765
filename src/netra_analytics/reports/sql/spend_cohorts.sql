-- Spend by weekly cohort (the Monday of a user's first event ever, from user_first_seen): how
-- many of the cohort came back in a later week, and what the cohort's prompts cost in the
-- range. A cohort starts in the range, so a later week's event is one in the range too.
WITH cohorts AS (
  SELECT user_id, toMonday(min(first_date)) AS cohort
  FROM analytics.user_first_seen
  GROUP BY user_id
  HAVING cohort BETWEEN toMonday({start:Date}) AND {end:Date}
)
SELECT
  cohorts.cohort AS cohort,
  count() AS users,
  countIf(active.last_week > cohorts.cohort) AS retained_users,
  sum(spend.cents) AS cents
FROM cohorts
LEFT JOIN (
  SELECT user_id, max(toMonday(date)) AS last_week
  FROM analytics.frontend_events
  WHERE date BETWEEN {start:Date} AND {end:Date}
    AND user_id IN (SELECT user_id FROM cohorts)
  GROUP BY user_id
) AS active ON cohorts.user_id = active.user_id
LEFT JOIN (
  SELECT user_id, sum(ifNull(actual_cost_cents, estimated_cost_cents)) AS cents
  FROM analytics.prompt_analytics FINAL
  WHERE toDate(timestamp) BETWEEN {start:Date} AND {end:Date}
    AND user_id IN (SELECT user_id FROM cohorts)
  GROUP BY user_id
) AS spend ON cohorts.user_id = spend.user_id
GROUP BY cohort
ORDER BY cohort
