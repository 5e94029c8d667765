-- The anonymous ids whose events belong to one person: the browsers they signed in on
-- (identity_links), each given to the first person it was linked to, so that what a visitor
-- did before signing in counts as theirs, and a browser shared later by someone else does not
-- hand its history to them too. At most 1,000 (a person signs in on a few browsers).
SELECT anonymous_id
FROM analytics.identity_links
WHERE anonymous_id IN (
  SELECT anonymous_id
  FROM analytics.identity_links
  WHERE user_id = {user_id:String}
)
GROUP BY anonymous_id
HAVING argMin(user_id, first_linked) = {user_id:String}
ORDER BY anonymous_id
LIMIT 1000
