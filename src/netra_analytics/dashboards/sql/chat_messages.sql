-- Chat volume: prompts people sent (chat_interaction events of message_type user_prompt) in
-- [from, to).
SELECT count() AS value
FROM analytics.frontend_events
WHERE /* events_in_range */
  AND event_type = 'chat_interaction'
  AND event_action = 'user_prompt'
