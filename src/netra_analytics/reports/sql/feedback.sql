-- Feedback in a date range (UTC): NPS and CSAT scores, feature requests and bug reports.
SELECT
  countIf(event_action = 'nps' AND JSONHas(properties, 'score')) AS nps_responses,
  countIf(event_action = 'nps' AND JSONExtractInt(properties, 'score') >= 9) AS promoters,
  countIf(event_action = 'nps' AND JSONHas(properties, 'score')
          AND JSONExtractInt(properties, 'score') <= 6) AS detractors,
  countIf(event_action = 'csat' AND JSONHas(properties, 'score')) AS csat_responses,
  countIf(event_action = 'csat' AND JSONExtractInt(properties, 'score') >= 4) AS csat_satisfied,
  avgIf(JSONExtractInt(properties, 'score'), event_action = 'csat' AND JSONHas(properties, 'score')) AS csat_mean,
  countIf(event_action = 'feature_request') AS feature_requests,
  countIf(event_action = 'bug_report') AS bug_reports
FROM analytics.frontend_events
WHERE event_type = 'feedback_submission'
  AND date BETWEEN {start:Date} AND {end:Date}
