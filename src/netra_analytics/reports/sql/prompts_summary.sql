-- Four summaries of the range's prompts from one read of prompt_analytics FINAL (each read
-- costs ~50 ms per million prompts before any work; one read instead of two saved ~30 ms),
-- told apart by `part`:
--   overview: rates over all prompts (follow-ups, repeats) and what a cache of repeated
--     questions would have saved (their answers' tokens, cost and response time);
--   categories: prompts per category and intent;
--   trend: average complexity per hour (1h, 24h) or per day (7d, 30d), UTC;
--   frequent: the 50 questions asked most often (same prompt_hash, at least
--     {min_frequency} times) with one sanitised example each; how many people asked them
--     comes from prompts_frequent_users.sql, for these 50 only.
-- Every set computes every aggregate; the ones a set does not need are cheap beside the read.
-- The answers' tokens and response times are columns ClickHouse computes from `signals`
-- (migration 0010), so the JSON is not read here.
SELECT
  multiIf(grouping(prompt_hash) = 0, 'frequent', grouping(prompt_category) = 0, 'categories',
          grouping(bucket) = 0, 'trend', 'overview') AS part,
  prompt_hash,
  prompt_category AS category,
  prompt_intent AS intent,
  if({hourly:Bool}, toStartOfHour(timestamp), toStartOfDay(timestamp)) AS bucket,
  count() AS prompts,
  avg(prompt_complexity_score) AS complexity,
  countIf(follow_up_generated) AS generated_follow_up,
  countIf(is_repeat_question) AS repeats,
  sumIf(answer_output_tokens, is_repeat_question) AS repeat_output_tokens,
  sumIf(estimated_cost_cents, is_repeat_question) AS repeat_cost_cents,
  sumIf(answer_response_time_ms, is_repeat_question) AS repeat_response_ms,
  any(prompt_text) AS example,
  any(prompt_category) AS example_category
FROM analytics.prompt_analytics FINAL
WHERE timestamp >= {since:DateTime64(3)}
  AND ({category:String} = '' OR prompt_category = {category:String})
GROUP BY GROUPING SETS ((), (prompt_category, prompt_intent), (bucket), (prompt_hash))
HAVING part != 'frequent' OR (prompt_hash != '' AND prompts >= {min_frequency:UInt32})
QUALIFY part != 'frequent'
  OR row_number() OVER (PARTITION BY part ORDER BY prompts DESC, prompt_hash) <= 50
ORDER BY part, if(part = 'frequent', prompts, 0) DESC, prompt_hash, category, intent, bucket
