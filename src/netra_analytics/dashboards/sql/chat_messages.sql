-- Chat volume: prompts people sent (chat_interaction events of message_type user_prompt) in
-- [from, to).
SELECT count() AS value
FROM analytics.frontend_events
WHERE timestamp >= {from:DateTime64(3)}
  AND timestamp < {to:DateTime64(3)}
  AND event_type = 'chat_interaction'
  AND event_action = 'user_prompt'
  AND ({environment:String} = '' OR environment = {environment:String})
  AND ({app_version:String} = '' OR app_version = {app_version:String})
  AND ({page_path:String} = '' OR page_path = {page_path:String})
