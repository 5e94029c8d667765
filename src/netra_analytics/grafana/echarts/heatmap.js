// Usage patterns: events per hour of the day (x, 0-23) and weekday (y, 1 = Monday .. 7).
const hours = column("hour");
const weekdays = column("weekday");
const counts = column("events");
const days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const cells = hours.map((h, i) => [h, weekdays[i] - 1, counts[i]]);
return {
  tooltip: { position: "top" },
  grid: { left: 48, right: 16, top: 16, bottom: 64 },
  xAxis: { type: "category", data: [...Array(24).keys()].map(String), splitArea: { show: true } },
  yAxis: { type: "category", data: days, inverse: true, splitArea: { show: true } },
  visualMap: {
    min: 0, max: Math.max(1, ...counts), calculable: true, orient: "horizontal",
    left: "center", bottom: 0,
  },
  series: [{ type: "heatmap", name: "events", data: cells, label: { show: false } }],
};
