-- Page moves within sessions for the days from {first} to {last} (the events from
-- frontend_events, or recent_events for today and yesterday: reports/common.py events_table),
-- each counted on the day of its second event: every session's pages in time order (events of
-- one millisecond ordered by a hash of their id, so the answer does not depend on how the store
-- happens to read them) over those days and the day before (a move across midnight belongs to
-- the day it ends on), then every consecutive pair of two different, non-empty pages on the
-- same or the next day (a session's longer gaps are not moves, whichever days are computed
-- together). Grouping by session and sorting each session's short array costs half of a window
-- function's sort of every event.
SELECT toString(pair.3) AS date, pair.1 AS from_page, pair.2 AS to_page, count() AS moves
FROM (
  SELECT arrayJoin(arrayFilter(
    pair -> pair.1 != '' AND pair.2 != '' AND pair.1 != pair.2
            AND pair.3 >= {first:Date} AND pair.3 - pair.4 <= 1,
    arrayZip(arrayPopBack(pages), arrayPopFront(pages), arrayPopFront(days), arrayPopBack(days))
  )) AS pair
  FROM (
    SELECT
      arraySort((page, key) -> key, groupArray(page_path), groupArray(key)) AS pages,
      arrayMap(key -> toDate(fromUnixTimestamp64Milli(intDiv(key, 4096))), arraySort(groupArray(key))) AS days
    FROM (
      SELECT session_id, page_path, toUnixTimestamp64Milli(timestamp) * 4096 + cityHash64(event_id) % 4096 AS key
      FROM analytics.{events:Identifier}
      WHERE date BETWEEN {first:Date} - 1 AND {last:Date}
    )
    GROUP BY session_id
    HAVING count() > 1
  )
)
GROUP BY date, from_page, to_page
