-- Every funnel of reports/data/funnels.json walked in one pass over the range's events (and,
-- when a step asks for complex prompts, the range's prompts): reports/journeys.py fills in
-- the parts marked /*...*/ from the step kinds and an allow-list of fields (every value is a
-- query parameter).
--
-- Each row becomes one UInt64: its time in epoch milliseconds shifted left by 20 bits, and in
-- the low bits which step conditions it meets (bit 0: it is an event, not a prompt; bits 1-19:
-- one per distinct condition, /*event_bits*/ and /*prompt_bits*/). One groupArray per user and
-- one sort give the user's rows in time order (measured on the 10 M-event bench, 30 days:
-- ~190 ms for 3.2 M events and 0.4 M prompts, where one sorted array per step cost ~280 ms
-- before any step was walked). A step is then found with arrayFirst: the first value with its
-- bit set that is >= (previous step's time << 20), i.e. at or after the previous step.
-- day_firsts: the first event of each active UTC day, for "active on N days" steps.
SELECT /*outputs*/
FROM (
  SELECT
    arraySort(groupArray(v)) AS s,
    arrayFilter(x -> bitTest(x, 0), s) AS events,
    arrayMap(x -> intDiv(bitShiftRight(x, 20), 86400000), events) AS days,
    arrayFilter((x, new_day, i) -> new_day != 0 OR i = 1,
                events, arrayDifference(days), arrayEnumerate(events)) AS day_firsts/*walks*/
  FROM (
    SELECT user_id, bitShiftLeft(toUInt64(toUnixTimestamp64Milli(timestamp)), 20) + 1/*event_bits*/ AS v
    FROM analytics.frontend_events
    WHERE date BETWEEN {start:Date} AND {end:Date}
    /*prompts*/
  )
  GROUP BY user_id
)
