-- Survey responses in a date range (UTC) by question type, with the 1-10 scale's mean and
-- the reported AI spend, from feedback_rollup.
SELECT
  event_action AS question_type,
  sum(answers) AS responses,
  sumIf(answers, has_scale) AS scaled,
  sumIf(scale * answers, has_scale) / nullIf(scaled, 0) AS scale_mean,
  sum(spend_last_month_sum) / nullIf(sum(spend_last_month_count), 0) AS ai_spend_last_month_mean,
  sum(spend_next_quarter_sum) / nullIf(sum(spend_next_quarter_count), 0) AS ai_spend_next_quarter_mean
FROM analytics.feedback_rollup
WHERE event_type = 'survey_response'
  AND date BETWEEN {start:Date} AND {end:Date}
GROUP BY question_type
ORDER BY question_type
