"""The Business Charts functions (the built-in dashboard's chart code with `grafana/echarts/
panel.js`) run in Node on the rows their panels' queries answer over the demo data, as the panel
runs them (a Grafana data frame in `context.panel.data.series`), and the vendored Apache ECharts
renders what they return (server-side SVG; the word cloud's layout needs a canvas, so only its
option is checked)."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from netra_analytics.grafana.dashboards import all_dashboards
from netra_analytics.grafana.macros import expand
from netra_analytics.store.chdb_backend import ChdbStore
from tests.dashboards.conftest import Filled
from tests.grafana.test_queries import context, infinity_csv

RUNNER = Path(__file__).with_name("render_chart.cjs")
ECHARTS = resources.files("netra_analytics.dashboards") / "static" / "vendor" / "echarts.min.js"
CHARTS = [
    (uid, panel)
    for uid, doc in all_dashboards().items()
    for panel in doc["panels"]
    if panel["type"] == "volkovlabs-echarts-panel"
]


def frame(columns: list[str], rows: list[list[Any]]) -> list[dict[str, Any]]:
    return [{"name": c, "values": [row[k] for row in rows]} for k, c in enumerate(columns)]


def rows_of(filled: Filled, store: ChdbStore, target: dict[str, Any]) -> list[dict[str, Any]]:
    """The panel's fields as Grafana hands them to the panel (numbers typed as declared)."""
    if "rawSql" in target:
        found = store.query_rows(expand(target["rawSql"], context(filled)))
        columns = list(found[0])
        return frame(columns, [[r[c] for c in columns] for r in found])
    header, rows = infinity_csv(filled, target)
    kinds = {c["selector"]: c["type"] for c in target["columns"]}
    typed = [
        [float(v) if kinds[c] == "number" else v for c, v in zip(header, row, strict=True)]
        for row in rows
    ]
    return frame(header, typed)


def run_chart(body: str, fields: list[dict[str, Any]], render: bool) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "Node.js is needed (make test installs it)"
    payload = {"echarts": str(ECHARTS), "body": body, "fields": fields, "render": render}
    done = subprocess.run(
        [node, str(RUNNER)], input=json.dumps(payload), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize(("uid", "panel"), CHARTS, ids=[f"{u}:{p['title']}" for u, p in CHARTS])
def test_each_chart_function_draws_its_panels_rows(
    filled: Filled, chdb_store: ChdbStore, uid: str, panel: dict[str, Any]
) -> None:
    [target] = panel["targets"]
    fields = rows_of(filled, chdb_store, target)
    rows = len(fields[0]["values"])
    assert rows > 0
    wordcloud = 'chartOption("wordcloud"' in panel["options"]["getOption"]
    result = run_chart(panel["options"]["getOption"], fields, render=not wordcloud)
    [series] = result["option"]["series"]
    if series["type"] == "sankey":
        assert len(series["links"]) == rows
        pages = {n["name"] for n in series["data"]}
        assert all(link["source"] in pages and link["target"] in pages for link in series["links"])
    else:
        assert len(series["data"]) == rows
    if series["type"] == "heatmap" and panel["title"].startswith("Usage"):
        assert all(0 <= x <= 23 and 0 <= y <= 6 and v > 0 for x, y, v in series["data"])
    if not wordcloud:
        assert result["svgLength"] > 2000  # an SVG with the chart drawn, not an empty frame


def test_a_chart_function_on_no_rows_says_so() -> None:
    for _, panel in CHARTS:
        empty = run_chart(panel["options"]["getOption"], [], render=True)
        assert empty["option"]["title"]["text"] == "No data" and "series" not in empty["option"]
        assert empty["svgLength"] > 0
