-- AI spend in a UTC date range, by model: the cost an event reported when it reported one,
-- else the estimate from tokens and the price table.
SELECT
  model_used AS model,
  count() AS prompts,
  sum(ifNull(actual_cost_cents, estimated_cost_cents)) AS cents,
  countIf(actual_cost_cents IS NOT NULL) AS reported
FROM analytics.prompt_analytics FINAL
WHERE toDate(timestamp) BETWEEN {start:Date} AND {end:Date}
GROUP BY model
ORDER BY cents DESC, model
