-- Usage patterns: events per hour of the day (0-23) and weekday (1 = Monday .. 7 = Sunday),
-- both in the viewer's zone.
SELECT
  toHour(timestamp, {tz:String}) AS hour,
  toDayOfWeek(timestamp, 0, {tz:String}) AS weekday,
  count() AS events
FROM analytics.frontend_events
WHERE timestamp >= {from:DateTime64(3)}
  AND timestamp < {to:DateTime64(3)}
  AND ({environment:String} = '' OR environment = {environment:String})
  AND ({app_version:String} = '' OR app_version = {app_version:String})
  AND ({page_path:String} = '' OR page_path = {page_path:String})
GROUP BY hour, weekday
ORDER BY weekday, hour
