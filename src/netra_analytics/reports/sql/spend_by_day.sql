-- AI spend per UTC day in the range (the trend the projection fits).
SELECT
  toDate(timestamp) AS day,
  sum(ifNull(actual_cost_cents, estimated_cost_cents)) AS cents
FROM analytics.prompt_analytics FINAL
WHERE toDate(timestamp) BETWEEN {start:Date} AND {end:Date}
GROUP BY day
ORDER BY day
