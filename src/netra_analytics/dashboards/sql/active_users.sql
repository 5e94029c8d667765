-- Active users: distinct people with any event in [from, to), counted exactly (as 64-bit
-- hashes of their ids, reports/common.py says why).
SELECT uniqExact(cityHash64(user_id)) AS value
FROM analytics.frontend_events
WHERE timestamp >= {from:DateTime64(3)}
  AND timestamp < {to:DateTime64(3)}
  AND ({environment:String} = '' OR environment = {environment:String})
  AND ({app_version:String} = '' OR app_version = {app_version:String})
  AND ({page_path:String} = '' OR page_path = {page_path:String})
