-- Page moves within sessions, by the day of the move's second event, for the days from
-- {first} to {last}: each session's pages in time order (events of one millisecond ordered by a hash of their id, so
-- the answer does not depend on how the store happens to read them), over the days and the
-- day before each (a move across midnight belongs to the day it ends on), then every
-- consecutive pair of two different, non-empty pages. Grouping by session and sorting each
-- session's short array costs half of a window function's sort of every event.
SELECT toString(pair.3) AS date, pair.1 AS from_page, pair.2 AS to_page, count() AS moves
FROM (
  SELECT arrayJoin(arrayFilter(
    pair -> pair.1 != '' AND pair.2 != '' AND pair.1 != pair.2 AND pair.3 >= {first:Date},
    arrayZip(
      arrayPopBack(pages),
      arrayPopFront(pages),
      arrayPopFront(arrayMap(key -> toDate(fromUnixTimestamp64Milli(intDiv(key, 4096))), keys))
    )
  )) AS pair
  FROM (
    SELECT arraySort(groupArray(key)) AS keys, arraySort((page, key) -> key, groupArray(page_path), groupArray(key)) AS pages
    FROM (
      SELECT session_id, page_path, toUnixTimestamp64Milli(timestamp) * 4096 + cityHash64(event_id) % 4096 AS key
      FROM analytics.frontend_events
      WHERE date BETWEEN {first:Date} - 1 AND {last:Date}
    )
    GROUP BY session_id
    HAVING count() > 1
  )
)
GROUP BY date, from_page, to_page
