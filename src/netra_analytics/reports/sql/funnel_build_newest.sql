-- The newest finished build of funnel_walks for these funnels that has walks from {start},
-- with a horizon before {before}, if it ran after {fresh_after} (µs since the epoch): builds
-- expire three days after they ran, their walks and their row each when ClickHouse gets
-- round to it, so an older build might have lost walks.
SELECT horizon, generation, first_start, events, prompts, linked
FROM analytics.funnel_builds
WHERE config = {config:String} AND first_start <= {start:Date} AND horizon >= {start:Date}
  AND horizon < {before:Date}
  AND generation > {fresh_after:UInt64}
ORDER BY horizon DESC, generation DESC
LIMIT 1
