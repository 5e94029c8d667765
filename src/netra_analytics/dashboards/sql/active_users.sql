-- Active users: distinct people with any event in [from, to), counted exactly (as 64-bit
-- hashes of their ids, reports/common.py says why).
SELECT uniqExact(cityHash64(user_id)) AS value
FROM analytics.frontend_events
WHERE /* events_in_range */
