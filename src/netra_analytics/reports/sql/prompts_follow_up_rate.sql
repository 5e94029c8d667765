-- Share of user prompts that the client marked as follow-up questions.
SELECT
  count() AS prompts,
  countIf(JSONExtractBool(properties, 'is_follow_up')) AS follow_ups
FROM analytics.frontend_events
WHERE event_type = 'chat_interaction'
  AND event_action = 'user_prompt'
  AND timestamp >= {since:DateTime64(3)}
