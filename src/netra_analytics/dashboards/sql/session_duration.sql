-- Average session duration, in seconds: per session with an event in [from, to), the time
-- from its first to its last event there; NULL when there is no session.
SELECT avg(seconds) AS value
FROM (
  SELECT dateDiff('millisecond', min(timestamp), max(timestamp)) / 1000 AS seconds
  FROM analytics.frontend_events
  WHERE /* events_in_range */
    AND session_id != ''
  GROUP BY session_id
)
