-- Share of user prompts that the client marked as follow-up questions, since a moment:
-- whole quarter hours from activity_rollup, the part before the first whole one from events.
SELECT sum(prompts) AS prompts, sum(follow_ups) AS follow_ups
FROM (
  SELECT sum(user_prompts) AS prompts, sum(follow_up_prompts) AS follow_ups
  FROM analytics.activity_rollup
  WHERE resolution = 'quarter_hour' AND bucket >= {first_whole:DateTime64(3)}
  UNION ALL
  SELECT count() AS prompts, countIf(JSONExtractBool(properties, 'is_follow_up')) AS follow_ups
  FROM analytics.frontend_events
  WHERE event_type = 'chat_interaction'
    AND event_action = 'user_prompt'
    AND timestamp >= {since:DateTime64(3)}
    AND timestamp < {first_whole:DateTime64(3)}
)
