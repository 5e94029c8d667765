-- The stored walks from one start day (funnel_walks, one build), as they stood at {cut} (epoch
-- ms): a later time is dropped, as if those days had not happened yet, so the walk can go on
-- through the rows after the cut (journey_funnels.sql). A walk only moves forward in time, so
-- dropping every time after the cut leaves the walk of the days up to it.
SELECT
  user_id,
  arrayMap(x -> if(x <= {cut:UInt64}, x, 0), times) AS times,
  arrayFilter(x -> x <= {cut:UInt64}, day_firsts) AS day_firsts
FROM analytics.funnel_walks
WHERE config = {config:String} AND generation = {generation:UInt64} AND start = {walk_start:Date}
