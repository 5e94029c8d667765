-- Top features by usage: feature_usage events per feature (event_label), the ten most used.
SELECT
  event_label AS feature,
  count() AS uses
FROM analytics.frontend_events
WHERE /* events_in_range */
  AND event_type = 'feature_usage'
GROUP BY feature
ORDER BY uses DESC, feature
LIMIT 10
