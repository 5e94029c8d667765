"""The catalog's dashboards as Grafana dashboards, built with grafana-foundation-sdk's typed
builders (schemaVersion 42, Grafana 11/12), plus an Operations dashboard over Prometheus.

Which datasource a panel reads (`source()`), for a ClickHouse server (the default):

- ClickHouse (`netra-clickhouse`, grafana-clickhouse-datasource): every panel whose rows come
  from a catalog SQL file (`SqlQuery`), its SQL translated by `queries.panel_query`;
- Infinity (`netra-infinity`): every panel computed by the service, read from its panel
  endpoint `/api/analytics/panels/<id>?format=csv` with the service's API key: the live state's
  numbers (`LiveQuery`), the reports' parts (`ReportQuery`), and the health score, whose formula
  needs the batch writer's state (`SqlQuery` with a `shape`);
- Prometheus (`netra-prometheus`): the Operations dashboard, from the service's `/metrics`.

For the embedded store (chDB inside the service, which Grafana cannot reach), `embedded=True`
reads every catalog panel through Infinity, the environment and app version filters passed to
the panel endpoint from text-box variables (empty: all).

Visualisations: core stat, timeseries, barchart (bars and funnels), piechart and table; the
Business Charts panel (`volkovlabs-echarts-panel`) for the Sankey diagram, the word cloud, the
weekday x hour heatmap and the cohort matrix, drawn by the built-in dashboard's own chart code
(`chart_function`).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, get_args, get_type_hints

from grafana_foundation_sdk.builders import barchart, piechart, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as grafana
from grafana_foundation_sdk.builders import prometheus as promql
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import piechart as piechart_model
from grafana_foundation_sdk.models.piechart import PieChartLabels

from netra_analytics.dashboards.catalog import (
    DASHBOARDS,
    PANELS_BY_ID,
    Dashboard,
    Panel,
    ReportQuery,
    SqlQuery,
    Visualisation,
)
from netra_analytics.grafana.queries import (
    TIME_ZONE_VARIABLE,
    VARIABLE_FILTERS,
    panel_query,
    select_columns,
    sql_file,
)
from netra_analytics.taxonomy import SurveyResponse

FOLDER = "Netra Analytics"
FOLDER_UID = "netra-analytics"
TAGS = ["netra-analytics"]
CLICKHOUSE = common.DataSourceRef(type_val="grafana-clickhouse-datasource", uid="netra-clickhouse")
PROMETHEUS = common.DataSourceRef(type_val="prometheus", uid="netra-prometheus")
INFINITY = common.DataSourceRef(type_val="yesoreyeram-infinity-datasource", uid="netra-infinity")
ECHARTS = "volkovlabs-echarts-panel"
PANEL_ROUTE = "/api/analytics/panels/{id}"
MIN_INTERVAL = "1h"  # of time series over the store (the built-in dashboard's hour buckets)
CLICKHOUSE_TABLE_FORMAT = 1  # sqlds' FormatOptionTable: rows as they come, one frame

# Grafana units for the catalog's (custom "suffix:" units for counts of things).
UNITS = {
    "percent": "percent",
    "ms": "ms",
    "seconds": "s",
    "score": "none",
    "usd": "currencyUSD",
    "usd_cents": "suffix: US¢",
    "events/s": "suffix: events/s",
}

# The columns of the Infinity panels' CSV (the panel endpoint's `columns`, routes.py), typed
# for Infinity's parser (a column not declared would arrive as text); the tests compare them
# with the endpoint's over demo data. The survey scales have a column per question kind that
# was answered: every kind the taxonomy knows is declared (one not answered is left empty).
NUMBER, STRING = "number", "string"
SURVEY_KINDS = get_args(get_type_hints(SurveyResponse)["question_type"])
STAT_COLUMNS = (("value", NUMBER), ("previous", NUMBER))
REPORT_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "by_model": (("model", STRING), ("spend_cents", NUMBER)),
    "daily": (("period", STRING), ("spend_cents", NUMBER), ("projected_cents", NUMBER)),
    "survey_reported": (("measure", STRING), ("value", NUMBER)),
    "surveys": (("scale", STRING), *((kind, NUMBER) for kind in SURVEY_KINDS)),
    "paths": (("source", STRING), ("target", STRING), ("value", NUMBER)),
    "cohorts": (("cohort", STRING), ("users", NUMBER), ("week", NUMBER), ("retention", NUMBER)),
    "onboarding": (("step", STRING), ("users", NUMBER), ("conversion_from_start", NUMBER)),
    "value_realisation": (("step", STRING), ("users", NUMBER), ("conversion_from_start", NUMBER)),
    "category_distribution": (("category", STRING), ("prompts", NUMBER)),
    "complexity_trend": (("period", STRING), ("complexity", NUMBER)),
    "most_frequent": (
        ("question", STRING), ("times_asked", NUMBER), ("people", NUMBER), ("category", STRING),
    ),
    "unanswered": (
        ("timestamp", STRING), ("question", STRING), ("category", STRING),
        ("no_response", STRING), ("errors_after", NUMBER),
    ),
}  # fmt: skip

# The catalog visualisations no core panel draws: Business Charts with the built-in charts.
ECHARTS_KINDS = (
    Visualisation.heatmap,
    Visualisation.cohort_matrix,
    Visualisation.sankey,
    Visualisation.wordcloud,
)
# The built-in dashboard's chart modules, in dependency order (format.js before charts.js).
CHART_MODULES = ("format.js", "charts.js")


def uid(board: Dashboard) -> str:
    return f"netra-{board.name}"


def source(panel: Panel, embedded: bool = False) -> common.DataSourceRef:
    """The datasource a catalog panel is read from in Grafana (module docstring)."""
    query = panel.query
    if isinstance(query, SqlQuery) and query.shape is None and not embedded:
        return CLICKHOUSE
    return INFINITY


LABELLED = (Visualisation.bar, Visualisation.pie, Visualisation.wordcloud)  # first column: text


def infinity_columns(panel: Panel) -> tuple[tuple[str, str], ...]:
    """The typed columns of a panel's CSV (its SQL file's, or the report table's)."""
    query = panel.query
    if panel.visualisation is Visualisation.stat:
        return STAT_COLUMNS
    if isinstance(query, ReportQuery):
        return REPORT_COLUMNS[query.field]
    if isinstance(query, SqlQuery):
        names = select_columns(query.file)
        labelled = panel.visualisation in LABELLED
        return tuple(
            (name, STRING if name == "period" or (k == 0 and labelled) else NUMBER)
            for k, name in enumerate(names)
        )
    raise KeyError(f"panel {panel.id}: no Infinity columns")


# -- queries ---------------------------------------------------------------------------------------


class RawQuery(cogvariants.Dataquery):
    """A datasource plugin's query model the SDK has no type for (ClickHouse, Infinity): a
    JSON object as the plugin stores it."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def to_json(self) -> dict[str, Any]:
        return self.fields


class Query(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, fields: dict[str, Any]) -> None:
        self._query = RawQuery(fields)

    def build(self) -> cogvariants.Dataquery:
        return self._query


def _ref(datasource: common.DataSourceRef) -> dict[str, str]:
    return {"type": str(datasource.type_val), "uid": str(datasource.uid)}


def clickhouse_query(sql: str, ref_id: str = "A") -> Query:
    """A query of the ClickHouse plugin in its SQL editor (`CHSqlQuery`)."""
    return Query(
        {
            "refId": ref_id,
            "datasource": _ref(CLICKHOUSE),
            "editorType": "sql",
            "queryType": "table",
            "format": CLICKHOUSE_TABLE_FORMAT,
            "rawSql": sql,
        }
    )


def infinity_query(panel: Panel) -> Query:
    """The panel endpoint's CSV through Infinity's backend parser: the dashboard's range as
    ISO 8601 times, its time zone, and the environment and app version variables where the
    panel honours them (the click filters Grafana does not have)."""
    params = [
        ("from", "${__from:date:iso}"),
        ("to", "${__to:date:iso}"),
        ("tz", f"${{{TIME_ZONE_VARIABLE}}}"),
        ("format", "csv"),
    ] + [(str(f), f"${{{f}}}") for f in VARIABLE_FILTERS if f in panel.filters]
    return Query(
        {
            "refId": "A",
            "datasource": _ref(INFINITY),
            "type": "csv",
            "source": "url",
            "parser": "backend",
            "format": "table",
            "url": PANEL_ROUTE.format(id=panel.id),
            "url_options": {
                "method": "GET",
                "params": [{"key": k, "value": v} for k, v in params],
            },
            "root_selector": "",
            "columns": [
                {"selector": name, "text": name, "type": kind}
                for name, kind in infinity_columns(panel)
            ],
        }
    )


def panel_target(panel: Panel, embedded: bool) -> Query:
    query = panel.query
    if source(panel, embedded) is CLICKHOUSE:
        assert isinstance(query, SqlQuery)
        return clickhouse_query(panel_query(query.file))
    return infinity_query(panel)


# -- panels ----------------------------------------------------------------------------------------


def _module_as_script(text: str) -> str:
    """An ES module of the built-in dashboard as plain statements (a function body cannot
    import or export): its imports dropped (the modules are put in order), `export ` removed."""
    lines = [line for line in text.splitlines() if not line.startswith("import ")]
    return "\n".join(line.removeprefix("export ") for line in lines)


@cache
def chart_function(kind: Visualisation, unit: str) -> str:
    """A Business Charts function body drawing `kind` with the built-in dashboard's own chart
    code (`chartOption` of static/charts.js), so Grafana and the built-in pages draw alike."""
    static = resources.files("netra_analytics.dashboards") / "static"
    shared = [_module_as_script((static / name).read_text()) for name in CHART_MODULES]
    end = (resources.files("netra_analytics.grafana") / "echarts" / "panel.js").read_text()
    end = end.replace("VISUALISATION", json.dumps(kind.value)).replace("UNIT", json.dumps(unit))
    return "\n".join([*shared, end])


def _to_time(field: str) -> model.DataTransformerConfig:
    """Grafana's "Convert field type" to a time, for period labels that arrive as text."""
    return model.DataTransformerConfig(
        id_val="convertFieldType",
        options={"conversions": [{"targetField": field, "destinationType": "time"}], "fields": {}},
    )


def _unit(panel: Panel) -> str:
    return UNITS.get(panel.unit, f"suffix: {panel.unit}")


def visualisation(panel: Panel, embedded: bool) -> cogbuilder.Builder[model.Panel]:
    """The Grafana panel drawing a catalog visualisation, before its query and position."""
    kind = panel.visualisation
    unit = _unit(panel)
    if kind is Visualisation.stat:
        reduce = common_builders.ReduceDataOptions().calcs(["lastNotNull"]).fields("/^value$/")
        return (
            stat.Panel().unit(unit).reduce_options(reduce).graph_mode(common.BigValueGraphMode.NONE)
        )
    if kind is Visualisation.timeseries:
        chart = timeseries.Panel().unit(unit).span_nulls(True)
        # $__timeInterval gives ClickHouse panels a time; other periods are labels ("2026-11-30").
        query = panel.query
        timed = (
            source(panel, embedded) is CLICKHOUSE
            and isinstance(query, SqlQuery)
            and "/* period */" in sql_file(query.file)
        )
        # The catalog's finest bucket is the hour: Grafana's interval, and so $__timeInterval,
        # no finer (wider on long ranges, as Grafana fits the points to the panel).
        return (
            chart.interval(MIN_INTERVAL) if timed else chart.with_transformation(_to_time("period"))
        )
    if kind in (Visualisation.bar, Visualisation.funnel):
        bars = barchart.Panel().unit(unit).show_value(common.VisibilityMode.AUTO)
        if kind is Visualisation.funnel:
            bars = bars.orientation(common.VizOrientation.HORIZONTAL).x_field("step")
        return bars
    if kind is Visualisation.pie:
        reduce = common_builders.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(True)
        return (
            piechart.Panel()
            .unit(unit)
            .reduce_options(reduce)
            .pie_type(piechart_model.PieChartType.PIE)
            .display_labels([PieChartLabels.NAME, PieChartLabels.PERCENT])
        )
    if kind is Visualisation.table:
        return table.Panel()
    if kind not in ECHARTS_KINDS:
        raise ValueError(f"panel {panel.id}: no Grafana panel draws {kind.value}")
    return (
        grafana.Panel()
        .type(ECHARTS)
        .options(
            {
                "renderer": "canvas",
                "editorMode": "code",
                "map": "none",
                "getOption": chart_function(kind, panel.unit),
            }
        )
    )


# -- layout, variables, dashboards -----------------------------------------------------------------

GRID_COLUMNS = 24
STAT_HEIGHT, CHART_HEIGHT = 4, 9


def layout(panels: list[Panel]) -> list[model.GridPos]:
    """Stat tiles first, side by side (rows of up to six, as even as they can be: seven tiles
    are four and three); then charts, two to a row, a `wide` one alone on its row; in the
    catalog's reading order."""
    tiles = [p for p in panels if p.visualisation is Visualisation.stat]
    places: dict[str, model.GridPos] = {}
    y = 0
    per_row = -(-len(tiles) // -(-len(tiles) // 6)) if tiles else 1  # ceil(n / ceil(n / 6))
    for start in range(0, len(tiles), per_row):
        row = tiles[start : start + per_row]
        x = 0
        for k, panel in enumerate(row):  # the row's full width, the first tiles a column wider
            width = GRID_COLUMNS // len(row) + (k < GRID_COLUMNS % len(row))
            places[panel.id] = model.GridPos(h=STAT_HEIGHT, w=width, x=x, y=y)
            x += width
        y += STAT_HEIGHT
    x = 0
    for panel in (p for p in panels if p.visualisation is not Visualisation.stat):
        width = GRID_COLUMNS if panel.wide else GRID_COLUMNS // 2
        if x + width > GRID_COLUMNS:
            x, y = 0, y + CHART_HEIGHT
        places[panel.id] = model.GridPos(h=CHART_HEIGHT, w=width, x=x, y=y)
        x += width
        if x >= GRID_COLUMNS:
            x, y = 0, y + CHART_HEIGHT
    return [places[p.id] for p in panels]


def _sql(name: str) -> str:
    return (resources.files("netra_analytics.grafana") / "sql" / f"{name}.sql").read_text()


VARIABLE_LABELS = {"environment": "Environment", "app_version": "App version"}


def variables(board: Dashboard, embedded: bool) -> list[cogbuilder.Builder[model.VariableModel]]:
    """Environment and app version where a panel honours them (query variables over the store,
    "All" by default; text boxes, empty for all, when the panels are read through the service),
    and the time zone of hour and weekday buckets (a text box: Grafana's `$__timezone` says
    `utc` or `browser`, which ClickHouse does not take)."""
    panels = [PANELS_BY_ID[p] for p in board.panels]
    found: list[cogbuilder.Builder[model.VariableModel]] = []
    filtered = any(f in p.filters for p in panels for f in VARIABLE_FILTERS)
    if embedded and filtered:
        found.extend(
            grafana.TextBoxVariable(str(name))
            .label(VARIABLE_LABELS[str(name)])
            .description("Empty: all")
            .default_value("")
            for name in VARIABLE_FILTERS
        )
    elif filtered:
        for name in VARIABLE_FILTERS:
            found.append(
                grafana.QueryVariable(str(name))
                .label(VARIABLE_LABELS[str(name)])
                .datasource(CLICKHOUSE)
                .query(_sql(f"variable_{name}"))
                .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
                .sort(model.VariableSort.ALPHABETICAL_ASC)
                .include_all(True)
                .multi(False)
                .allow_custom_value(False)
                .current(model.VariableOption(selected=True, text="All", value="$__all"))
            )
    found.append(
        grafana.TextBoxVariable(TIME_ZONE_VARIABLE)
        .label("Time zone (IANA)")
        .description("Zone of the hour and weekday buckets, e.g. Europe/Berlin")
        .default_value("UTC")
    )
    return found


def catalog_panel(
    panel: Panel, number: int, place: model.GridPos, embedded: bool
) -> cogbuilder.Builder[Any]:
    builder: Any = visualisation(panel, embedded)
    placed: cogbuilder.Builder[Any] = (
        builder.id(number)
        .title(panel.title)
        .description(panel.description)
        .datasource(source(panel, embedded))
        .with_target(panel_target(panel, embedded))
        .grid_pos(place)
    )
    return placed


def _refresh(seconds: int) -> str:
    return f"{seconds}s" if seconds < 60 else f"{seconds // 60}m"


def dashboard(board: Dashboard, embedded: bool = False) -> grafana.Dashboard:
    panels = [PANELS_BY_ID[p] for p in board.panels]
    built = (
        grafana.Dashboard(board.title)
        .uid(uid(board))
        .description(board.description)
        .tags(TAGS)
        .editable()
        .timezone("browser")
        .time("now-15m" if board.live else "now-24h", "now")
        .refresh(_refresh(board.refresh_seconds))
        .variables(variables(board, embedded))
        .links(
            [
                grafana.DashboardLink("Netra Analytics")
                .type(model.DashboardLinkType.DASHBOARDS)
                .tags(TAGS)
                .as_dropdown(True)
                .keep_time(True)
                .include_vars(True)
            ]
        )
    )
    for number, (panel, place) in enumerate(zip(panels, layout(panels), strict=True), 1):
        built = built.with_panel(catalog_panel(panel, number, place, embedded))
    return built


# -- Operations (Prometheus) ---------------------------------------------------------------------

# title, unit, PromQL, legend: the spec's key metrics and the health checks (metrics.py).
OPERATIONS: tuple[tuple[str, str, str, str], ...] = (
    ("Event ingestion rate, by outcome", "suffix: events/s",
     "sum by (outcome) (rate(netra_event_ingestion_events_total[5m]))", "{{outcome}}"),
    ("Processing latency p95 (capture/receipt to stored)", "s",
     "histogram_quantile(0.95, sum by (le, since) "
     "(rate(netra_processing_latency_seconds_bucket[5m])))", "{{since}}"),
    ("Query performance p95, by kind", "s",
     "histogram_quantile(0.95, sum by (le, kind) "
     "(rate(netra_query_performance_seconds_bucket[5m])))", "{{kind}}"),
    ("Storage usage", "bytes",
     "sum by (component) (netra_storage_usage_bytes)", "{{component}}"),
    ("API availability (not 5xx, 5 min)", "percentunit",
     "min(netra_api_availability_ratio)", "availability"),
    ("API requests, by status class", "reqps",
     "sum by (status_class) (rate(netra_api_requests_total[5m]))", "{{status_class}}"),
    ("Spool backlog", "bytes", "sum(netra_spool_backlog_bytes)", "backlog"),
    ("Spool fsync p99 (each accepted request waits for one)", "s",
     "histogram_quantile(0.99, sum by (le) (rate(netra_spool_fsync_seconds_bucket[5m])))",
     "p99"),
    ("Data freshness (age of the newest event)", "s",
     "max(netra_data_freshness_seconds)", "age"),
    ("Tag heartbeat age, by container", "s",
     "max by (container) (netra_tag_heartbeat_age_seconds)", "{{container}}"),
    ("Health checks (0 ok, 1 degraded, 2 failing)", "none",
     "max by (check) (netra_health_status)", "{{check}}"),
)  # fmt: skip

OPERATIONS_UID = "netra-operations"


def operations() -> grafana.Dashboard:
    """The service's own health from Prometheus (its `/metrics`)."""
    built = (
        grafana.Dashboard("Operations")
        .uid(OPERATIONS_UID)
        .description("The service itself: ingestion, latency, queries, storage, availability.")
        .tags(TAGS)
        .editable()
        .timezone("browser")
        .time("now-6h", "now")
        .refresh("1m")
    )
    for number, (title, unit, expr, legend) in enumerate(OPERATIONS, 1):
        place = model.GridPos(
            h=CHART_HEIGHT, w=GRID_COLUMNS // 2, x=(number - 1) % 2 * 12,
            y=(number - 1) // 2 * CHART_HEIGHT,
        )  # fmt: skip
        built = built.with_panel(
            timeseries.Panel()
            .id(number)
            .title(title)
            .unit(unit)
            .datasource(PROMETHEUS)
            .with_target(
                promql.Dataquery()
                .datasource(PROMETHEUS)
                .expr(expr)
                .legend_format(legend)
                .range()
                .ref_id("A")
            )
            .grid_pos(place)
        )
    return built


def as_json(built: cogbuilder.Builder[model.Dashboard]) -> dict[str, Any]:
    """The dashboard's JSON model as Grafana stores it (keys sorted: stable files)."""
    data: dict[str, Any] = json.loads(json.dumps(built.build(), cls=JSONEncoder, sort_keys=True))
    return data


def all_dashboards(embedded: bool = False) -> dict[str, dict[str, Any]]:
    """Every generated dashboard's JSON model by uid: the catalog's, then Operations."""
    found = {uid(board): as_json(dashboard(board, embedded)) for board in DASHBOARDS}
    found[OPERATIONS_UID] = as_json(operations())
    return found
