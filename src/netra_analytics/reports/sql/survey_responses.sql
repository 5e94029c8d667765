-- Survey responses in a date range (UTC) by question type, with the 1-10 scale distribution.
SELECT
  event_action AS question_type,
  count() AS responses,
  countIf(JSONHas(properties, 'response_scale')) AS scaled,
  avgIf(JSONExtractInt(properties, 'response_scale'), JSONHas(properties, 'response_scale')) AS scale_mean,
  avgIf(JSONExtractFloat(properties, 'ai_spend_last_month'), JSONHas(properties, 'ai_spend_last_month')) AS ai_spend_last_month_mean,
  avgIf(JSONExtractFloat(properties, 'ai_spend_next_quarter'), JSONHas(properties, 'ai_spend_next_quarter')) AS ai_spend_next_quarter_mean
FROM analytics.frontend_events
WHERE event_type = 'survey_response'
  AND date BETWEEN {start:Date} AND {end:Date}
GROUP BY question_type
ORDER BY question_type
