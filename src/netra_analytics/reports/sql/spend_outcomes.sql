-- Active users and successful outcomes in the range: a thread completed, or positive feedback
-- (NPS 9-10, CSAT 4-5); and what users said they spend on AI in surveys.
SELECT
  uniqExact(cityHash64(user_id)) AS active_users,
  countIf(event_type = 'thread_lifecycle' AND event_action = 'completed') AS threads_completed,
  countIf(event_type = 'feedback_submission'
          AND ((event_action = 'nps' AND JSONExtractInt(properties, 'score') >= 9)
               OR (event_action = 'csat' AND JSONExtractInt(properties, 'score') >= 4))) AS positive_feedback,
  avgIf(JSONExtractFloat(properties, 'ai_spend_last_month'),
        event_type = 'survey_response' AND JSONHas(properties, 'ai_spend_last_month')) AS reported_last_month,
  avgIf(JSONExtractFloat(properties, 'ai_spend_next_quarter'),
        event_type = 'survey_response' AND JSONHas(properties, 'ai_spend_next_quarter')) AS reported_next_quarter
FROM analytics.frontend_events
WHERE date BETWEEN {start:Date} AND {end:Date}
