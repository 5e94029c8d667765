// Common terms of prompts: size by the prompts a word appears in (echarts-wordcloud, which
// Business Charts bundles).
const terms = column("term");
const counts = column("prompts");
return {
  tooltip: {},
  series: [{
    type: "wordCloud",
    shape: "circle",
    sizeRange: [12, 48],
    rotationRange: [0, 0],
    gridSize: 6,
    data: terms.map((name, i) => ({ name, value: counts[i] })),
  }],
};
