-- One person's activity per day, ISO week (Monday) or month, in UTC, from the summary view:
-- the events under their id and their browsers' anonymous ids (person_ids.sql).
-- Rows of one (user, date) may not be merged yet: every column is summed.
SELECT
  multiIf({granularity:String} = 'week', toMonday(date),
          {granularity:String} = 'month', toStartOfMonth(date),
          date) AS period,
  sum(total_events) AS total_events,
  sum(chat_interactions) AS chat_interactions,
  sum(threads_created) AS threads_created,
  sum(feature_interactions) AS feature_interactions,
  sum(total_tokens_consumed) AS tokens_consumed,
  sum(response_time_sum_ms) / nullIf(sum(response_time_count), 0) AS avg_response_time_ms,
  toUInt64(count() > 0) AS active_users
FROM analytics.user_analytics_summary
WHERE date BETWEEN {start:Date} AND {end:Date}
  AND user_id IN {user_ids:Array(String)}
GROUP BY period
ORDER BY period
