-- User activity of all users per hour, day, ISO week (Monday) or month in a time zone, from
-- activity_rollup: its UTC days when the zone is UTC and periods are days or longer, its
-- quarter hours otherwise (every zone's offset is a whole number of quarter hours).
SELECT
  multiIf({granularity:String} = 'hour', toStartOfHour(bucket, {tz:String}),
          {granularity:String} = 'week', toDateTime(toMonday(bucket, {tz:String}), {tz:String}),
          {granularity:String} = 'month', toDateTime(toStartOfMonth(bucket, {tz:String}), {tz:String}),
          toStartOfDay(bucket, {tz:String})) AS period_start,
  formatDateTime(period_start, '%Y-%m-%dT%H:00%z', {tz:String}) AS period,
  sum(total_events) AS total_events,
  sum(chat_interactions) AS chat_interactions,
  sum(threads_created) AS threads_created,
  sum(feature_interactions) AS feature_interactions,
  sum(tokens_consumed) AS tokens_consumed,
  sum(response_time_sum_ms) / nullIf(sum(response_time_count), 0) AS avg_response_time_ms,
  uniqExactMerge(users) AS active_users
FROM analytics.activity_rollup
WHERE resolution = {resolution:String}
  AND bucket >= {from:DateTime64(3)}
  AND bucket < {until:DateTime64(3)}
GROUP BY period_start
ORDER BY period_start
