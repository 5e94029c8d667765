-- Prompts that got no AI response, or whose answer was followed by an error.
-- The filter reads `signals` with the simpleJSON functions (see prompts_summary.sql):
-- the prompt worker writes that JSON itself, compact, and its keys `responded` and
-- `errors_after` occur once in it.
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
  AND (NOT simpleJSONExtractBool(signals, 'responded') OR simpleJSONExtractInt(signals, 'errors_after') > 0)
ORDER BY timestamp DESC
LIMIT 50
