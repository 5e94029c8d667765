-- A time series' period label, shared by the panels over time: panel_sql() puts this
-- expression where a file says /* period */. The hour (the day when {hourly} is false) of the
-- viewer's zone, labelled as panels.period_labels() labels the periods without data.
formatDateTime(
  if({hourly:Bool}, toStartOfHour(timestamp, {tz:String}), toStartOfDay(timestamp, {tz:String})),
  if({hourly:Bool}, '%Y-%m-%d %H:00', '%Y-%m-%d'),
  {tz:String}
)
