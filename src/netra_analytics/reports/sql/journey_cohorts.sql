-- Weekly cohorts (the Monday of a person's first event ever, from person_first_seen) and the
-- weeks of the range they were active in. People, not stored ids (person_links): a browser's
-- first day and weeks count as those of the person who signed in on it first, so a visitor
-- who signs in is not a one-week cohort of their own. The range's events are first cut down
-- to one row per id and week, then mapped.
SELECT first.cohort AS cohort, active.week AS week, uniqExact(cityHash64(active.person)) AS users
FROM (
  SELECT if(link.person = '', seen.user_id, link.person) AS person, seen.week AS week
  FROM (
    SELECT DISTINCT user_id, toMonday(date) AS week
    FROM analytics.frontend_events
    WHERE date BETWEEN {start:Date} AND {end:Date}
  ) AS seen
  GLOBAL LEFT JOIN analytics.person_links AS link ON seen.user_id = link.anonymous_id
) AS active
INNER JOIN (
  SELECT person, toMonday(first_date) AS cohort
  FROM analytics.person_first_seen
  WHERE cohort BETWEEN toMonday({start:Date}) AND {end:Date}
) AS first ON active.person = first.person
GROUP BY cohort, week
ORDER BY cohort, week
