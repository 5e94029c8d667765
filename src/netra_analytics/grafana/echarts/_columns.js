// Business Charts (volkovlabs-echarts-panel) function body, shared start: the first frame's
// columns by name (the panel's query names them; catalog.SHAPES says which).
const frame = context.panel.data.series[0];
const column = (name) => (frame ? frame.fields.find((f) => f.name === name)?.values ?? [] : []);
