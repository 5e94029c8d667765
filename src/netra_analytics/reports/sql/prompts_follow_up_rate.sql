-- Share of user prompts that the client marked as follow-up questions, since a whole minute.
SELECT sum(user_prompts) AS prompts, sum(follow_up_prompts) AS follow_ups
FROM analytics.follow_up_minutes
WHERE minute >= {since:DateTime64(3)}
