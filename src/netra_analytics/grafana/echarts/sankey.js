// User journeys: page-to-page moves within sessions (acyclic: the service drops the links
// that would close a cycle, which a Sankey diagram cannot draw).
const sources = column("source");
const targets = column("target");
const values = column("value");
const pages = [...new Set([...sources, ...targets])];
return {
  tooltip: { trigger: "item" },
  series: [{
    type: "sankey",
    emphasis: { focus: "adjacency" },
    data: pages.map((name) => ({ name })),
    links: sources.map((s, i) => ({ source: s, target: targets[i], value: values[i] })),
    lineStyle: { color: "gradient", curveness: 0.5 },
  }],
};
