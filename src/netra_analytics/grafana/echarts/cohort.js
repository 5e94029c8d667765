// Weekly cohort retention: share of a cohort (y) still active n weeks after (x), in percent.
const cohorts = column("cohort");
const weeks = column("week");
const shares = column("retention");
const rows = [...new Set(cohorts)];
const cells = cohorts.map((c, i) => [weeks[i], rows.indexOf(c), shares[i]]);
return {
  tooltip: { position: "top" },
  grid: { left: 96, right: 16, top: 16, bottom: 64 },
  xAxis: { type: "category", name: "week", data: [...new Set(weeks)].sort((a, b) => a - b).map(String) },
  yAxis: { type: "category", data: rows, inverse: true },
  visualMap: { min: 0, max: 100, calculable: true, orient: "horizontal", left: "center", bottom: 0 },
  series: [{ type: "heatmap", name: "retention %", data: cells, label: { show: true } }],
};
