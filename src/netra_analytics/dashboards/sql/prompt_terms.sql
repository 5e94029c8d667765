-- Common terms of prompts in [from, to): words of the sanitised text (prompt_analytics keeps
-- nothing else), placeholders such as [EMAIL] removed before splitting, counted once per
-- prompt; words under three characters, numbers and {stop_words} left out; the 80 commonest.
SELECT
  word AS term,
  count() AS prompts
FROM (
  SELECT arrayJoin(arrayDistinct(splitByRegexp(
    '[^a-z0-9_]+',
    lower(replaceRegexpAll(prompt_text, '\\[[A-Z_]+\\]', ' '))
  ))) AS word
  FROM analytics.prompt_analytics FINAL
  WHERE timestamp >= {from:DateTime64(3)}
    AND timestamp < {to:DateTime64(3)}
    AND ({category:String} = '' OR prompt_category = {category:String})
    AND ({model:String} = '' OR model_used = {model:String})
)
WHERE length(word) >= 3
  AND NOT match(word, '^[0-9_]+$')
  AND word NOT IN {stop_words:Array(String)}
GROUP BY word
ORDER BY prompts DESC, word
LIMIT 80
