-- Chat volume over time: prompts and AI answers per hour (per day when {hourly} is false) of
-- the viewer's zone, labelled as the panel code labels its empty periods.
SELECT
  /* period */ AS period,
  countIf(event_action = 'user_prompt') AS prompts,
  countIf(event_action = 'ai_response') AS ai_responses
FROM analytics.frontend_events
WHERE /* events_in_range */
  AND event_type = 'chat_interaction'
GROUP BY period
ORDER BY period
