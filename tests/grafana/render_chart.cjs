// Runs a Business Charts function body as the panel does (`context.panel.data.series`, a
// Grafana data frame of named fields) and, unless told not to, renders the option with the
// vendored Apache ECharts to SVG on the server. Input on stdin: {echarts, body, fields, render};
// output on stdout: {option, svgLength}.
const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const context = { panel: { data: { series: [{ fields: input.fields }] } } };
  const option = new Function("context", input.body)(context);
  let svgLength = 0;
  if (input.render) {
    const echarts = require(input.echarts);
    const chart = echarts.init(null, null, { renderer: "svg", ssr: true, width: 800, height: 400 });
    chart.setOption({ ...option, animation: false });
    svgLength = chart.renderToSVGString().length;
    chart.dispose();
  }
  process.stdout.write(JSON.stringify({ option, svgLength }));
  process.exit(0);
});
