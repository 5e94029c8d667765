-- Each person's first day (user_first_seen mapped through person_links: a browser's first
-- signed-out day counts as its person's), for the weekly cohorts of journeys and ai-spend.
CREATE VIEW IF NOT EXISTS analytics.person_first_seen AS
SELECT person, min(first_date) AS first_date
FROM (
  SELECT if(link.person = '', f.user_id, link.person) AS person, f.first_date AS first_date
  FROM analytics.user_first_seen AS f
  GLOBAL LEFT JOIN analytics.person_links AS link ON f.user_id = link.anonymous_id
)
GROUP BY person;
