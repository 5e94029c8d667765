-- Spend by weekly cohort (the Monday of a user's first event): how many of the cohort came
-- back in a later week, and what the cohort's prompts cost in the range.
WITH
  cohorts AS (
    SELECT user_id, toMonday(min(date)) AS cohort, max(toMonday(date)) > toMonday(min(date)) AS retained
    FROM analytics.frontend_events
    WHERE date <= {end:Date}
    GROUP BY user_id
  ),
  spend AS (
    SELECT user_id, sum(ifNull(actual_cost_cents, estimated_cost_cents)) AS cents
    FROM analytics.prompt_analytics FINAL
    WHERE toDate(timestamp) BETWEEN {start:Date} AND {end:Date}
    GROUP BY user_id
  )
SELECT cohort, count() AS users, countIf(retained) AS retained_users, sum(cents) AS cents
FROM cohorts
LEFT JOIN spend ON cohorts.user_id = spend.user_id
WHERE cohort BETWEEN toMonday({start:Date}) AND {end:Date}
GROUP BY cohort
ORDER BY cohort
