// The end of a Business Charts function body (volkovlabs-echarts-panel): the built-in
// dashboard's chart code (static/format.js and static/charts.js, put before this by the
// generator) draws the panel's first data frame, as a table of columns and rows, exactly as it
// draws the panel on the built-in pages (the generator puts in the catalog's visualisation and
// unit below).
const frame = context.panel.data.series[0];
const fields = frame ? frame.fields : [];
const table = {
  columns: fields.map((f) => f.name),
  rows: fields.length ? Array.from(fields[0].values, (_, i) => fields.map((f) => f.values[i])) : [],
};
if (!table.rows.length) {
  return { title: { text: "No data", left: "center", top: "middle", textStyle: { color: "#888" } } };
}
return chartOption(VISUALISATION, table, UNIT);
