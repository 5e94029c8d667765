-- Who each browser belongs to, for every report over all users (issue 12): a browser's
-- anonymous id goes to the first person who signed in on it (argMin by first_linked), as in
-- the one-user report, so that what a visitor did before signing in counts as that person's
-- and a browser shared later does not hand its history to the next person. Reports read it
-- with a GLOBAL join or IN (a cluster computes it once, on the node that asked), and map a
-- stored user_id to `if(person = '', user_id, person)`.
CREATE VIEW IF NOT EXISTS analytics.person_links AS
SELECT anonymous_id, argMin(user_id, first_linked) AS person
FROM analytics.identity_links
GROUP BY anonymous_id;

-- Per day of a funnel build, the events then stored under an anonymous id that is linked to a
-- person: a browser linked after the build changes this count on the days it was active, so
-- the stored walks hold only up to the day before (reports/funnel_walks.py). Builds written
-- before this column have none and are not used.
ALTER TABLE analytics.funnel_builds ADD COLUMN IF NOT EXISTS linked Array(UInt64) DEFAULT [];
