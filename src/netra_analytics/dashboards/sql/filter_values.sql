-- The environments and app versions seen in [from, to), for the dashboard's filter menus,
-- and whether any event is stored at all (else the page explains how to fill the store).
SELECT
  groupUniqArrayIf(100)(environment, environment != '') AS environments,
  groupUniqArrayIf(100)(app_version, app_version != '') AS app_versions,
  (SELECT count() > 0 FROM (SELECT 1 FROM analytics.frontend_events LIMIT 1)) AS events_stored
FROM analytics.frontend_events
WHERE timestamp >= {from:DateTime64(3)}
  AND timestamp < {to:DateTime64(3)}
