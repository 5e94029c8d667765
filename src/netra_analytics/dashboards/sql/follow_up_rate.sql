-- Follow-up question rate, in percent: of the prompts people sent in [from, to), those the
-- client marked as follow-ups (is_follow_up); NULL without prompts.
SELECT 100 * countIf(JSONExtractBool(properties, 'is_follow_up')) / nullIf(count(), 0) AS value
FROM analytics.frontend_events
WHERE timestamp >= {from:DateTime64(3)}
  AND timestamp < {to:DateTime64(3)}
  AND event_type = 'chat_interaction'
  AND event_action = 'user_prompt'
  AND ({environment:String} = '' OR environment = {environment:String})
  AND ({app_version:String} = '' OR app_version = {app_version:String})
  AND ({page_path:String} = '' OR page_path = {page_path:String})
