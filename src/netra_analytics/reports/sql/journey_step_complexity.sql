-- When each user asked prompts at least this complex (the first 1,000 times, epoch ms).
-- Without FINAL: a prompt's timestamp and complexity are fixed when it is first analysed, so
-- its later versions (rows not merged yet) only repeat a time, which cannot change the first
-- time at or after another; FINAL would cost ~50 ms per million prompts.
SELECT user_id, groupArraySorted(1000)(toUnixTimestamp64Milli(timestamp)) AS times
FROM analytics.prompt_analytics
WHERE toDate(timestamp) BETWEEN {start:Date} AND {end:Date}
  AND prompt_complexity_score >= {min_complexity:Float32}
GROUP BY user_id
