-- When each user started their Nth distinct active day (UTC) in the range.
SELECT user_id, [toUnixTimestamp64Milli(min(timestamp))] AS times
FROM analytics.frontend_events AS e
INNER JOIN (
  SELECT user_id, arraySort(groupUniqArray(date))[{days:UInt32}] AS nth_day
  FROM analytics.frontend_events
  WHERE date BETWEEN {start:Date} AND {end:Date}
  GROUP BY user_id
  HAVING uniqExact(date) >= {days:UInt32}
) AS d ON e.user_id = d.user_id
WHERE e.date = d.nth_day
GROUP BY user_id
