-- Three summaries of the range's prompts from one read of prompt_analytics FINAL (each read
-- costs ~50 ms per million prompts before any work), told apart by `part`:
--   overview: rates over all prompts (follow-ups, repeats) and what a cache of repeated
--     questions would have saved (their answers' tokens, cost and response time);
--   categories: prompts per category and intent;
--   trend: average complexity per hour (1h, 24h) or per day (7d, 30d), UTC.
-- The answers' tokens and response times are columns ClickHouse computes from `signals`
-- (migration 0010), so the JSON is not read here.
SELECT
  multiIf(grouping(prompt_category) = 0, 'categories', grouping(bucket) = 0, 'trend', 'overview') AS part,
  prompt_category AS category,
  prompt_intent AS intent,
  if({hourly:Bool}, toStartOfHour(timestamp), toStartOfDay(timestamp)) AS bucket,
  count() AS prompts,
  avg(prompt_complexity_score) AS complexity,
  countIf(follow_up_generated) AS generated_follow_up,
  countIf(is_repeat_question) AS repeats,
  sumIf(answer_output_tokens, is_repeat_question) AS repeat_output_tokens,
  sumIf(estimated_cost_cents, is_repeat_question) AS repeat_cost_cents,
  sumIf(answer_response_time_ms, is_repeat_question) AS repeat_response_ms
FROM analytics.prompt_analytics FINAL
WHERE timestamp >= {since:DateTime64(3)}
  AND ({category:String} = '' OR prompt_category = {category:String})
GROUP BY GROUPING SETS ((), (prompt_category, prompt_intent), (bucket))
ORDER BY part, category, intent, bucket
