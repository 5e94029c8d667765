-- What the System Health Score is computed from (formula in dashboards/panels.py): the
-- range's events and the errors among them (error_tracking events, failed performance
-- metrics and feature uses: the live error rate's definition), events rejected at ingest,
-- the 95th percentile of AI response times, and the newest stored event (data freshness).
SELECT
  count() AS events,
  countIf(
    event_type = 'error_tracking'
    OR (event_type = 'performance_metric' AND event_label = 'failure')
    OR (event_type = 'feature_usage' AND NOT JSONExtractBool(properties, 'success'))
  ) AS errors,
  quantileExactIf(0.95)(
    JSONExtractFloat(properties, 'response_time_ms'),
    event_type = 'chat_interaction' AND JSONHas(properties, 'response_time_ms')
  ) AS p95_response_ms,
  (
    SELECT count()
    FROM analytics.rejected_events
    WHERE received_at >= {from:DateTime64(3)}
      AND received_at < {to:DateTime64(3)}
  ) AS rejected,
  (
    SELECT max(timestamp)
    FROM analytics.frontend_events
  ) AS latest_event
FROM analytics.frontend_events
WHERE timestamp >= {from:DateTime64(3)}
  AND timestamp < {to:DateTime64(3)}
