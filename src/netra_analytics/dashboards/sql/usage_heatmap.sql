-- Usage patterns: events per hour of the day (0-23) and weekday (1 = Monday .. 7 = Sunday),
-- both in the viewer's zone.
SELECT
  toHour(timestamp, {tz:String}) AS hour,
  toDayOfWeek(timestamp, 0, {tz:String}) AS weekday,
  count() AS events
FROM analytics.frontend_events
WHERE /* events_in_range */
GROUP BY hour, weekday
ORDER BY weekday, hour
