-- Top features by usage: feature_usage events per feature (event_label), the ten most used.
SELECT
  event_label AS feature,
  count() AS uses
FROM analytics.frontend_events
WHERE timestamp >= {from:DateTime64(3)}
  AND timestamp < {to:DateTime64(3)}
  AND event_type = 'feature_usage'
  AND ({environment:String} = '' OR environment = {environment:String})
  AND ({app_version:String} = '' OR app_version = {app_version:String})
  AND ({page_path:String} = '' OR page_path = {page_path:String})
GROUP BY feature
ORDER BY uses DESC, feature
LIMIT 10
