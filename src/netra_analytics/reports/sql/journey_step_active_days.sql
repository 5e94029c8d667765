-- When each user started their Nth distinct active day (UTC) in the range: the Nth of their
-- days' first times.
SELECT user_id, [arraySort(groupArray(first_time))[{days:UInt32}]] AS times
FROM (
  SELECT user_id, date, min(toUnixTimestamp64Milli(timestamp)) AS first_time
  FROM analytics.frontend_events
  WHERE date BETWEEN {start:Date} AND {end:Date}
  GROUP BY user_id, date
)
GROUP BY user_id
HAVING count() >= {days:UInt32}
