-- How many survey answers gave each point of the 1-10 scale, by question type (UTC dates).
SELECT event_action AS question_type, scale, sum(answers) AS responses
FROM analytics.feedback_rollup
WHERE event_type = 'survey_response'
  AND date BETWEEN {start:Date} AND {end:Date}
  AND has_scale
GROUP BY question_type, scale
ORDER BY question_type, scale
