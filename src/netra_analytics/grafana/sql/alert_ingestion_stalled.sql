-- Ingestion stalled: seconds since the newest stored event (the health check's data
-- freshness, read from the store itself so it fires even when the service is down).
SELECT dateDiff('second', max(timestamp), now()) AS data_age_seconds
FROM analytics.frontend_events
