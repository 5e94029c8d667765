-- How many survey answers gave each point of the 1-10 scale, by question type (UTC dates).
SELECT
  event_action AS question_type,
  JSONExtractInt(properties, 'response_scale') AS scale,
  count() AS responses
FROM analytics.frontend_events
WHERE event_type = 'survey_response'
  AND date BETWEEN {start:Date} AND {end:Date}
  AND JSONHas(properties, 'response_scale')
GROUP BY question_type, scale
ORDER BY question_type, scale
