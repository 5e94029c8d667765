-- The environment variable's choices: environments with events in the dashboard's range.
SELECT DISTINCT environment
FROM analytics.frontend_events
WHERE $__timeFilter(timestamp)
  AND environment != ''
ORDER BY environment
