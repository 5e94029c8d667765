-- The newest finished build of funnel_walks for these funnels that has walks from {start}.
SELECT horizon, generation, first_start, events, prompts
FROM analytics.funnel_builds
WHERE config = {config:String} AND first_start <= {start:Date} AND horizon >= {start:Date}
ORDER BY horizon DESC, generation DESC
LIMIT 1
