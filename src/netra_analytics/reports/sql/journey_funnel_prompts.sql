-- The prompts part of journey_funnel_rows.sql, for steps that ask for a prompt at least this
-- complex: prompts carry no bit 0 (they are not events), only the bits of the thresholds they
-- reach. Without FINAL: a prompt's time and complexity are fixed when it is first analysed,
-- so a later version not merged yet only repeats a value, which cannot change the first one
-- at or after another (FINAL would cost ~50 ms per million prompts).
UNION ALL
SELECT user_id, bitShiftLeft(toUInt64(toUnixTimestamp64Milli(timestamp)), 20)/*prompt_bits*/ AS v
FROM analytics.prompt_analytics
WHERE toDate(timestamp) BETWEEN {rows_from:Date} AND {end:Date}
  AND prompt_complexity_score >= {least_complexity:Float32}
