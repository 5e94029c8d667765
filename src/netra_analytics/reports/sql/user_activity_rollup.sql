-- User activity of all users per hour, day, ISO week (Monday) or month in a time zone, from
-- activity_rollup: its UTC days when the zone is UTC and periods are days or longer, its
-- quarter hours otherwise (every zone's offset is a whole number of quarter hours).
-- Active users are people, not stored ids: a browser that later signed in (person_links) was
-- counted in the rollup under its anonymous id. For each period, with S the ids the rollup
-- counted, A the linked browsers among them (their events stored under the anonymous id, from
-- frontend_events: sorted by user, so this reads only those browsers) and P their people,
-- the people are |S ∪ P| − |A|: the rollup's sets merged with a set of P's hashes, less A.
-- (A and P never meet: a person's id is not a browser's.) Beyond the events' 90 days A is
-- empty and the rollup's count stands.
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
  uniqExactMerge(users) - uniqExactMerge(browsers) AS active_users
FROM (
  SELECT
    bucket, total_events, chat_interactions, threads_created, feature_interactions,
    tokens_consumed, response_time_sum_ms, response_time_count, users,
    arrayReduce('uniqExactState', emptyArrayUInt64()) AS browsers
  FROM analytics.activity_rollup
  WHERE resolution = {resolution:String}
    AND bucket >= {from:DateTime64(3)}
    AND bucket < {until:DateTime64(3)}
  UNION ALL
  SELECT
    seen.bucket AS bucket, toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toFloat64(0),
    toFloat64(0), toUInt64(0),
    uniqExactState(cityHash64(link.person)), uniqExactState(cityHash64(seen.browser))
  FROM (
    SELECT DISTINCT
      toDateTime(if({resolution:String} = 'day', toStartOfDay(timestamp, 'UTC'),
                    toStartOfFifteenMinutes(timestamp, 'UTC')), 'UTC') AS bucket,
      user_id AS browser
    FROM analytics.frontend_events
    WHERE user_id GLOBAL IN (SELECT anonymous_id FROM analytics.person_links)
      AND timestamp >= {from:DateTime64(3)}
      AND timestamp < {until:DateTime64(3)}
  ) AS seen
  GLOBAL INNER JOIN analytics.person_links AS link ON seen.browser = link.anonymous_id
  GROUP BY bucket
)
GROUP BY period_start
ORDER BY period_start
