-- One person's activity per hour (or per day, week or month in a time zone other than UTC),
-- from their events (under their id and their browsers' anonymous ids: person_ids.sql); the
-- summary view's days are UTC days.
SELECT
  multiIf({granularity:String} = 'hour', toStartOfHour(timestamp, {tz:String}),
          {granularity:String} = 'week', toDateTime(toMonday(timestamp, {tz:String}), {tz:String}),
          {granularity:String} = 'month', toDateTime(toStartOfMonth(timestamp, {tz:String}), {tz:String}),
          toStartOfDay(timestamp, {tz:String})) AS period_start,
  formatDateTime(period_start, '%Y-%m-%dT%H:00%z', {tz:String}) AS period,
  count() AS total_events,
  countIf(event_type = 'chat_interaction') AS chat_interactions,
  countIf(event_type = 'thread_lifecycle' AND event_action = 'created') AS threads_created,
  countIf(event_type = 'feature_usage') AS feature_interactions,
  sumIf(event_value, event_type = 'chat_interaction') AS tokens_consumed,
  avgIf(event_value, event_type = 'performance_metric') AS avg_response_time_ms,
  toUInt64(count() > 0) AS active_users
FROM analytics.frontend_events
WHERE timestamp >= {from:DateTime64(3)}
  AND timestamp < {until:DateTime64(3)}
  AND user_id IN {user_ids:Array(String)}
GROUP BY period_start
ORDER BY period_start
