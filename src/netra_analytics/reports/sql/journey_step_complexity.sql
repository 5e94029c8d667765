-- When each user asked prompts at least this complex.
SELECT user_id, arraySlice(arraySort(groupArray(toUnixTimestamp64Milli(timestamp))), 1, 1000) AS times
FROM analytics.prompt_analytics FINAL
WHERE toDate(timestamp) BETWEEN {start:Date} AND {end:Date}
  AND prompt_complexity_score >= {min_complexity:Float32}
GROUP BY user_id
