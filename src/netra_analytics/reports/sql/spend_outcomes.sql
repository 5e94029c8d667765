-- Successful outcomes in the range: a thread completed, or positive feedback (NPS 9-10,
-- CSAT 4-5); and what users said they spend on AI in surveys. From the rollups. (Active users
-- come from the funnels' pass over the events, which ai-spend makes anyway.)
SELECT
  activity.threads_completed AS threads_completed,
  feedback.positive_feedback AS positive_feedback,
  feedback.reported_last_month AS reported_last_month,
  feedback.reported_next_quarter AS reported_next_quarter
FROM (
  SELECT sum(threads_completed) AS threads_completed
  FROM analytics.activity_rollup
  WHERE resolution = 'day' AND toDate(bucket) BETWEEN {start:Date} AND {end:Date}
) AS activity
CROSS JOIN (
  SELECT
    sumIf(answers, event_type = 'feedback_submission' AND has_score
          AND ((event_action = 'nps' AND score >= 9) OR (event_action = 'csat' AND score >= 4))) AS positive_feedback,
    sum(spend_last_month_sum) / nullIf(sum(spend_last_month_count), 0) AS reported_last_month,
    sum(spend_next_quarter_sum) / nullIf(sum(spend_next_quarter_count), 0) AS reported_next_quarter
  FROM analytics.feedback_rollup
  WHERE date BETWEEN {start:Date} AND {end:Date}
) AS feedback
