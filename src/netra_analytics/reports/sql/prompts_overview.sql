-- Rates over all prompts in the range: follow-ups, repeats, and what a cache of repeated
-- questions would have saved (their answers' tokens, cost and response time). The signals
-- JSON is parsed only for repeats (`if` is evaluated lazily; `sumIf` would parse every row).
SELECT
  count() AS prompts,
  countIf(follow_up_generated) AS generated_follow_up,
  countIf(is_repeat_question) AS repeats,
  sum(if(is_repeat_question, JSONExtractInt(signals, 'tokens', 'output'), 0)) AS repeat_output_tokens,
  sumIf(estimated_cost_cents, is_repeat_question) AS repeat_cost_cents,
  sum(if(is_repeat_question, JSONExtractFloat(signals, 'signals', 'response_time_ms'), 0)) AS repeat_response_ms
FROM analytics.prompt_analytics FINAL
WHERE timestamp >= {since:DateTime64(3)}
  AND ({category:String} = '' OR prompt_category = {category:String})
