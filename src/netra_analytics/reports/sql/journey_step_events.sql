-- When each user did something matching a funnel step (first 1,000 times, in order, as epoch milliseconds).
-- The step's fields come from an allow-list; an empty value means "any".
SELECT user_id, arraySlice(arraySort(groupArray(toUnixTimestamp64Milli(timestamp))), 1, 1000) AS times
FROM analytics.frontend_events
WHERE date BETWEEN {start:Date} AND {end:Date}
  AND ({event_type:String} = '' OR event_type = {event_type:String})
  AND ({event_category:String} = '' OR event_category = {event_category:String})
  AND ({event_action:String} = '' OR event_action = {event_action:String})
  AND ({event_label:String} = '' OR event_label = {event_label:String})
  AND ({page_path:String} = '' OR page_path = {page_path:String})
GROUP BY user_id
