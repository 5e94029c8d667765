-- The range and the event filters, shared by the panels over frontend_events: panel_sql()
-- puts these lines where a file says /* events_in_range */ (a WHERE clause's first lines).
timestamp >= {from:DateTime64(3)}
AND timestamp < {to:DateTime64(3)}
AND ({environment:String} = '' OR environment = {environment:String})
AND ({app_version:String} = '' OR app_version = {app_version:String})
AND ({page_path:String} = '' OR page_path = {page_path:String})
