-- Rates over all prompts in the range: follow-ups, repeats, and what a cache of repeated
-- questions would have saved (their answers' tokens, cost and response time).
-- `signals` is read with the simpleJSON functions (a JSON parse per row costs ~90 ms per field
-- on a million prompts; these cost next to nothing): the prompt worker writes that JSON
-- itself, compact, and the keys `output` and `response_time_ms` occur once in it.
SELECT
  count() AS prompts,
  countIf(follow_up_generated) AS generated_follow_up,
  countIf(is_repeat_question) AS repeats,
  sumIf(simpleJSONExtractInt(signals, 'output'), is_repeat_question) AS repeat_output_tokens,
  sumIf(estimated_cost_cents, is_repeat_question) AS repeat_cost_cents,
  sumIf(simpleJSONExtractFloat(signals, 'response_time_ms'), is_repeat_question) AS repeat_response_ms
FROM analytics.prompt_analytics FINAL
WHERE timestamp >= {since:DateTime64(3)}
  AND ({category:String} = '' OR prompt_category = {category:String})
