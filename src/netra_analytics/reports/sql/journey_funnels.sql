-- Every funnel of reports/data/funnels.json walked in one query (reports/funnels.py fills in
-- the parts marked /*...*/ from the step kinds and an allow-list of fields; every value is a
-- query parameter). Per user, from two sources, either or both:
--   ev: the user's rows of a range of days in time order (journey_funnel_rows.sql);
--   st: the user's walk as stored in funnel_walks up to a cut (journey_funnel_stored.sql),
--       joined (FULL) by user when both are read: a walk goes on past its stored part
--       through the rows after the cut.
-- A step is the stored time when the stored part reached it, else the first row with its bit
-- set at or after the previous step: arrayFirst over values >= (previous time << 20). An
-- "active on N days" step is the first event of the Nth active day (the stored days' first
-- events, then the rows'), when that is at or after the previous step.
-- Then per funnel the users who reached each step and the median wait between steps, or, to
-- store the walks (funnel_walks), each user's times.
SELECT /*outputs*/
FROM (
  SELECT /*walks*/
  FROM /*sources*/
)
