-- Rates over all prompts in the range: follow-ups, repeats, and what a cache of repeated
-- questions would have saved (their answers' tokens, cost and response time).
SELECT
  count() AS prompts,
  countIf(JSONExtractBool(signals, 'signals', 'followed_up')) AS generated_follow_up,
  countIf(is_repeat_question) AS repeats,
  sumIf(JSONExtractInt(signals, 'tokens', 'output'), is_repeat_question) AS repeat_output_tokens,
  sumIf(estimated_cost_cents, is_repeat_question) AS repeat_cost_cents,
  sumIf(JSONExtractFloat(signals, 'signals', 'response_time_ms'), is_repeat_question) AS repeat_response_ms
FROM analytics.prompt_analytics FINAL
WHERE timestamp >= {since:DateTime64(3)}
  AND ({category:String} = '' OR prompt_category = {category:String})
