-- How prompts split over categories and intents.
SELECT prompt_category AS category, prompt_intent AS intent, count() AS prompts
FROM analytics.prompt_analytics FINAL
WHERE timestamp >= {since:DateTime64(3)}
  AND ({category:String} = '' OR prompt_category = {category:String})
GROUP BY category, intent
ORDER BY category, intent
