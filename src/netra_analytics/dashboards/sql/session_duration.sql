-- Average session duration, in seconds: per session with an event in [from, to), the time
-- from its first to its last event there; NULL when there is no session.
SELECT avg(seconds) AS value
FROM (
  SELECT dateDiff('millisecond', min(timestamp), max(timestamp)) / 1000 AS seconds
  FROM analytics.frontend_events
  WHERE timestamp >= {from:DateTime64(3)}
    AND timestamp < {to:DateTime64(3)}
    AND session_id != ''
    AND ({environment:String} = '' OR environment = {environment:String})
    AND ({app_version:String} = '' OR app_version = {app_version:String})
    AND ({page_path:String} = '' OR page_path = {page_path:String})
  GROUP BY session_id
)
