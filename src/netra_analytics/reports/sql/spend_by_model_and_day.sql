-- AI spend in a UTC date range by model, and per day (the trend the projection fits), from
-- one read of prompt_analytics FINAL (GROUPING SETS; `by` says which): the cost an event
-- reported when it reported one, else the estimate from tokens and the price table.
SELECT
  if(grouping(model) = 0, 'model', 'day') AS by,
  model_used AS model,
  toDate(timestamp) AS day,
  count() AS prompts,
  sum(ifNull(actual_cost_cents, estimated_cost_cents)) AS cents,
  countIf(actual_cost_cents IS NOT NULL) AS reported
FROM analytics.prompt_analytics FINAL
WHERE toDate(timestamp) BETWEEN {start:Date} AND {end:Date}
GROUP BY GROUPING SETS ((model), (day))
ORDER BY by, day, cents DESC, model
