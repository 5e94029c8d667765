-- Feedback in a date range (UTC): NPS and CSAT scores, feature requests and bug reports,
-- from feedback_rollup (rows of one key may not be merged yet: everything is summed).
SELECT
  sumIf(answers, event_action = 'nps' AND has_score) AS nps_responses,
  sumIf(answers, event_action = 'nps' AND has_score AND score >= 9) AS promoters,
  sumIf(answers, event_action = 'nps' AND has_score AND score <= 6) AS detractors,
  sumIf(answers, event_action = 'csat' AND has_score) AS csat_responses,
  sumIf(answers, event_action = 'csat' AND has_score AND score >= 4) AS csat_satisfied,
  sumIf(score * answers, event_action = 'csat' AND has_score) / nullIf(csat_responses, 0) AS csat_mean,
  sumIf(answers, event_action = 'feature_request') AS feature_requests,
  sumIf(answers, event_action = 'bug_report') AS bug_reports
FROM analytics.feedback_rollup
WHERE event_type = 'feedback_submission'
  AND date BETWEEN {start:Date} AND {end:Date}
