-- Spend by weekly cohort (the Monday of a person's first event ever, from person_first_seen):
-- how many of the cohort came back in a later week, and what the cohort's prompts cost in the
-- range. A cohort starts in the range, so a later week's event is one in the range too.
-- People, not stored ids (person_links): a browser's days and prompts are those of the person
-- who signed in on it first. The cohorts' members (people) and every id that is theirs (their
-- own and their browsers') are scalar subqueries, computed once (as a CTE they were computed
-- three times: ~100 → ~40 ms on the bench, 194 → 166 ms with 100,000 members).
WITH
  (
    SELECT groupArray((person, cohort)) FROM (
      SELECT person, toMonday(first_date) AS cohort
      FROM analytics.person_first_seen
      WHERE cohort BETWEEN toMonday({start:Date}) AND {end:Date})
  ) AS members,
  (
    SELECT groupArray((anonymous_id, person)) FROM analytics.person_links
    WHERE person IN (SELECT arrayJoin(members).1)
  ) AS browsers,
  arrayConcat(arrayMap(m -> m.1, members), arrayMap(b -> b.1, browsers)) AS ids
SELECT
  cohorts.cohort AS cohort,
  count() AS users,
  countIf(active.last_week > cohorts.cohort) AS retained_users,
  sum(spend.cents) AS cents
FROM (SELECT arrayJoin(members) AS member, member.1 AS person, member.2 AS cohort) AS cohorts
LEFT JOIN (
  SELECT person, max(week) AS last_week
  FROM (
    SELECT transform(user_id, arrayMap(b -> b.1, browsers), arrayMap(b -> b.2, browsers), user_id)
             AS person,
           toMonday(date) AS week
    FROM analytics.frontend_events
    WHERE date BETWEEN {start:Date} AND {end:Date}
      AND user_id IN (SELECT arrayJoin(ids))
  )
  GROUP BY person
) AS active ON cohorts.person = active.person
LEFT JOIN (
  SELECT person, sum(cents) AS cents
  FROM (
    SELECT transform(user_id, arrayMap(b -> b.1, browsers), arrayMap(b -> b.2, browsers), user_id)
             AS person,
           ifNull(actual_cost_cents, estimated_cost_cents) AS cents
    FROM analytics.prompt_analytics FINAL
    WHERE toDate(timestamp) BETWEEN {start:Date} AND {end:Date}
      AND user_id IN (SELECT arrayJoin(ids))
  )
  GROUP BY person
) AS spend ON cohorts.person = spend.person
GROUP BY cohort
ORDER BY cohort
