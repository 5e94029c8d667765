-- When each user asked prompts at least this complex (the first 1,000 times, epoch ms).
SELECT user_id, groupArraySorted(1000)(toUnixTimestamp64Milli(timestamp)) AS times
FROM analytics.prompt_analytics FINAL
WHERE toDate(timestamp) BETWEEN {start:Date} AND {end:Date}
  AND prompt_complexity_score >= {min_complexity:Float32}
GROUP BY user_id
