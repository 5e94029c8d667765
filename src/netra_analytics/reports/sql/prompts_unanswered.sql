-- Prompts that got no AI response, or whose answer was followed by an error.
SELECT
  toString(prompt_id) AS prompt_id,
  timestamp,
  prompt_text AS text,
  prompt_category AS category,
  NOT JSONExtractBool(signals, 'signals', 'responded') AS no_response,
  JSONExtractInt(signals, 'signals', 'errors_after') AS errors_after
FROM analytics.prompt_analytics FINAL
WHERE timestamp >= {since:DateTime64(3)}
  AND ({category:String} = '' OR prompt_category = {category:String})
  AND (NOT JSONExtractBool(signals, 'signals', 'responded')
       OR JSONExtractInt(signals, 'signals', 'errors_after') > 0)
ORDER BY timestamp DESC
LIMIT 50
