-- Feature requests and bug reports per UTC day of [from, to), from feedback_rollup (rows of
-- one key may not be merged yet: summed).
SELECT
  toString(date) AS period,
  sumIf(answers, event_action = 'feature_request') AS feature_requests,
  sumIf(answers, event_action = 'bug_report') AS bug_reports
FROM analytics.feedback_rollup
WHERE event_type = 'feedback_submission'
  AND date BETWEEN toDate({from:DateTime64(3)}) AND toDate({to:DateTime64(3)} - INTERVAL 1 MILLISECOND)
GROUP BY date
ORDER BY date
