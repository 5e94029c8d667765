-- The time zones this ClickHouse knows: reports accept a zone only when Python's zoneinfo knows
-- it too (read once per store).
SELECT
  time_zone AS name
FROM system.time_zones
