-- The app version variable's choices: versions with events in the dashboard's range.
SELECT DISTINCT app_version
FROM analytics.frontend_events
WHERE $__timeFilter(timestamp)
  AND app_version != ''
ORDER BY app_version
