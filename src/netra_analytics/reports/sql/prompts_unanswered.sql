-- Prompts that got no AI response, or whose answer was followed by an error (`answered` and
-- `errors_after` are columns ClickHouse computes from `signals`, migration 0010).
SELECT
  toString(prompt_id) AS prompt_id,
  timestamp,
  prompt_text AS text,
  prompt_category AS category,
  NOT answered AS no_response,
  errors_after
FROM analytics.prompt_analytics FINAL
WHERE timestamp >= {since:DateTime64(3)}
  AND ({category:String} = '' OR prompt_category = {category:String})
  AND (NOT answered OR errors_after > 0)
ORDER BY timestamp DESC
LIMIT 50
