-- The most common moves between pages within a session (for a Sankey diagram).
SELECT from_page, to_page, count() AS moves
FROM (
  SELECT
    page_path AS to_page,
    lagInFrame(page_path) OVER (PARTITION BY session_id ORDER BY timestamp, event_id
                                ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS from_page
  FROM analytics.frontend_events
  WHERE date BETWEEN {start:Date} AND {end:Date}
)
WHERE from_page != '' AND to_page != '' AND from_page != to_page
GROUP BY from_page, to_page
ORDER BY moves DESC, from_page, to_page
LIMIT {limit:UInt32}
