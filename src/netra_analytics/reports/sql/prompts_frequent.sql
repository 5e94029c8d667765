-- The questions asked most often (same prompt_hash), with one sanitised example each; how many
-- people asked them comes from prompts_frequent_users.sql, for these 50 only.
SELECT
  prompt_hash,
  any(prompt_text) AS example,
  count() AS asked,
  any(prompt_category) AS category
FROM analytics.prompt_analytics FINAL
WHERE timestamp >= {since:DateTime64(3)}
  AND prompt_hash != ''
  AND ({category:String} = '' OR prompt_category = {category:String})
GROUP BY prompt_hash
HAVING asked >= {min_frequency:UInt32}
ORDER BY asked DESC, prompt_hash
LIMIT 50
