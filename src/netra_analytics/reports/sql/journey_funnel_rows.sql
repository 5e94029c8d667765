-- Per user, the range's events (from frontend_events, or recent_events for today and
-- yesterday: reports/common.py events_table) and, when a step asks for complex prompts, its
-- prompts (journey_funnel_prompts.sql), as one sorted array of UInt64: the time in epoch
-- milliseconds shifted left by 20 bits, and in the low bits which step conditions the row
-- meets (bit 0: it is an event, not a prompt; bits 1-19: one per distinct condition,
-- /*event_bits*/). One groupArray per user and one sort (~190 ms for the bench's 3.2 M events
-- and 0.4 M prompts in 30 days, where one sorted array per step cost ~280 ms before any step
-- was walked). day_firsts: the time of the first event of each active UTC day.
-- Rows are a person's (person_links): a browser's rows before its first sign-in go to the
-- person who signed in on it first, so a visit that starts signed out is one walk. The links
-- are one scalar subquery (computed once, on the node that asked) read through transform()'s
-- hash table: a join of every row with them cost ~75 % more than the query without.
SELECT
  person AS user_id,
  arraySort(groupArray(v)) AS s,
  arrayFilter(x -> bitTest(x, 0), s) AS events,
  arrayMap(x -> intDiv(bitShiftRight(x, 20), 86400000), events) AS days,
  arrayMap(x -> bitShiftRight(x, 20), arrayFilter((x, new_day, i) -> new_day != 0 OR i = 1,
           events, arrayDifference(days), arrayEnumerate(events))) AS day_firsts
FROM (
  WITH (SELECT (groupArray(anonymous_id), groupArray(person)) FROM analytics.person_links) AS links
  SELECT transform(user_id, links.1, links.2, user_id) AS person, v
  FROM (
    SELECT user_id, bitShiftLeft(toUInt64(toUnixTimestamp64Milli(timestamp)), 20) + 1/*event_bits*/ AS v
    FROM analytics.{events:Identifier}
    WHERE date BETWEEN {rows_from:Date} AND {end:Date}
    /*prompts*/
  )
)
GROUP BY person
