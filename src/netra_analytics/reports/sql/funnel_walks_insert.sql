-- Store one start day's walks (reports/funnel_walks.py puts the walk query in /*walks*/).
INSERT INTO analytics.funnel_walks (config, horizon, generation, start, user_id, times, day_firsts)
SELECT {build_config:String}, {build_horizon:Date}, {build_generation:UInt64}, {build_start:Date},
  user_id, times, day_firsts
FROM (/*walks*/)
