-- Average complexity per hour (1h, 24h) or per day (7d, 30d), UTC.
SELECT
  if({hourly:Bool}, toStartOfHour(timestamp), toStartOfDay(timestamp)) AS bucket,
  avg(prompt_complexity_score) AS complexity,
  count() AS prompts
FROM analytics.prompt_analytics FINAL
WHERE timestamp >= {since:DateTime64(3)}
  AND ({category:String} = '' OR prompt_category = {category:String})
GROUP BY bucket
ORDER BY bucket
