-- Follow-up question rate per hour (per day when {hourly} is false) of the viewer's zone, in
-- percent of that period's prompts.
SELECT
  /* period */ AS period,
  100 * countIf(simpleJSONExtractBool(properties, 'is_follow_up')) / count() AS follow_up_percent
FROM analytics.frontend_events
WHERE /* events_in_range */
  AND event_type = 'chat_interaction'
  AND event_action = 'user_prompt'
GROUP BY period
ORDER BY period
