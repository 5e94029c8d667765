-- The stored page moves of the given days, each day's given computation (generation).
SELECT from_page, to_page, sum(moves) AS total
FROM analytics.path_moves
WHERE date IN {days:Array(Date)}
  AND has(arrayZip({days:Array(Date)}, {generations:Array(UInt64)}), (date, generation))
  AND moves > 0
GROUP BY from_page, to_page
