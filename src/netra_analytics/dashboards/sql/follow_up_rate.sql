-- Follow-up question rate, in percent: of the prompts people sent in [from, to), those the
-- client marked as follow-ups (is_follow_up); NULL without prompts.
SELECT 100 * countIf(simpleJSONExtractBool(properties, 'is_follow_up')) / nullIf(count(), 0) AS value
FROM analytics.frontend_events
WHERE /* events_in_range */
  AND event_type = 'chat_interaction'
  AND event_action = 'user_prompt'
