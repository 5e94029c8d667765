"""The panel catalog: every panel and dashboard, defined once, as data.

The built-in dashboard reads it (`dashboards/routes.py`, `static/`); the Grafana provisioning
will be generated from it. So it holds no logic: ids, titles, the question each panel answers,
where its rows come from, how they are drawn, in what unit, how often they refresh.

Where a panel's rows come from (`query`):

- `SqlQuery(file)`: a named `.sql` file in `dashboards/sql/`, ClickHouse dialect, typed
  parameters only: `{from:DateTime64(3)}` and `{to:DateTime64(3)}` (the range, UTC, `to`
  excluded), `{tz:String}` (the viewer's zone, for hour and day buckets), `{hourly:Bool}` (hour
  buckets when the range is 3 days or less, else days), and the filters below (`''` = all). A
  file uses only the filters its panel lists in `filters`.
- `ReportQuery(report, field)`: a part of an existing report (`reports/`), computed by that
  report's own function over the range's UTC dates (`ai-spend`, `feedback`, `journeys`) or its
  window ending now (`prompts`); the reply's `covers` says what was covered when it differs.
- `LiveQuery(field)`: a number of the real-time engagement report (live state, last 5 minutes).

Rows: every panel answers a table, `columns` and `rows`, whose shape its visualisation fixes
(`SHAPES`): the browser draws it, the CSV download is it, the tests check it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Visualisation(StrEnum):
    stat = "stat"
    timeseries = "timeseries"
    bar = "bar"
    pie = "pie"
    heatmap = "heatmap"
    table = "table"
    sankey = "sankey"
    wordcloud = "wordcloud"
    cohort_matrix = "cohort_matrix"
    funnel = "funnel"


# The columns each visualisation draws ("..." = one or more numeric series after the label).
SHAPES: dict[Visualisation, tuple[str, ...]] = {
    Visualisation.stat: ("value", "previous"),  # one row; previous: same-length period before
    Visualisation.timeseries: ("period", "..."),  # period label (viewer's zone), then series
    Visualisation.bar: ("label", "..."),
    Visualisation.pie: ("label", "value"),
    Visualisation.heatmap: ("x", "y", "value"),
    Visualisation.table: (),  # any columns
    Visualisation.sankey: ("source", "target", "value"),
    Visualisation.wordcloud: ("term", "count"),
    Visualisation.cohort_matrix: ("cohort", "users", "week", "retention"),
    Visualisation.funnel: ("step", "users", "conversion_from_start"),
}


class Filter(StrEnum):
    """The dashboard-wide filters (query parameters of the panel endpoint, `''` = all)."""

    environment = "environment"  # context.environment of the events
    app_version = "app_version"  # context.app_version of the events
    page_path = "page_path"  # events on this page (a click on a Sankey node sets it)
    category = "category"  # prompts of this category (a click on the category pie sets it)
    model = "model"  # prompts answered by this model (a click on a spend-by-model bar sets it)


EVENT_FILTERS = (Filter.environment, Filter.app_version, Filter.page_path)
PROMPT_FILTERS = (Filter.category, Filter.model)


@dataclass(frozen=True, kw_only=True)
class SqlQuery:
    file: str  # dashboards/sql/<file>.sql
    # A pure function of panels.py (by name, from its allow-list) that turns the SQL's rows into
    # the panel's, where more than a projection is needed (the health score's formula).
    shape: str | None = None


@dataclass(frozen=True, kw_only=True)
class ReportQuery:
    report: str  # ai-spend, feedback, journeys, prompts
    field: str  # the part of the report this panel shows


@dataclass(frozen=True, kw_only=True)
class LiveQuery:
    field: str  # a field of the engagement report


Query = SqlQuery | ReportQuery | LiveQuery


@dataclass(frozen=True, kw_only=True)
class Panel:
    id: str
    title: str
    description: str  # the question it answers, one line
    query: Query
    visualisation: Visualisation
    unit: str  # users, sessions, messages, events, ms, seconds, percent, score, usd_cents, ...
    refresh_seconds: int = 60
    filters: tuple[Filter, ...] = ()  # the filters it honours; others are shown as not applied
    click_filter: Filter | None = None  # the filter a click on a slice, bar or node sets
    wide: bool = False  # spans the dashboard's width
    # Which way a stat tile's change is good news (coloured so), or None: neither (spend).
    better: Literal["up", "down"] | None = "up"


@dataclass(frozen=True, kw_only=True)
class Dashboard:
    name: str  # its path: /dashboards/<name>
    title: str
    description: str
    panels: tuple[str, ...]  # panel ids, in reading order (stat tiles first)
    refresh_seconds: int = 60  # default auto refresh
    live: bool = False  # real time: the range picker does not apply


LIVE = 5  # seconds: the live state's panels

PANELS: tuple[Panel, ...] = (
    # -- real time, from the live state --------------------------------------------------------
    Panel(id="live_active_users", title="Active users (5 min)",
          description="How many distinct people used the product in the last five minutes?",
          query=LiveQuery(field="active_users"), visualisation=Visualisation.stat,
          unit="users", refresh_seconds=LIVE),
    Panel(id="live_active_chat_sessions", title="Active chat sessions (5 min)",
          description="How many sessions sent a chat message in the last five minutes?",
          query=LiveQuery(field="active_chat_sessions"), visualisation=Visualisation.stat,
          unit="sessions", refresh_seconds=LIVE),
    Panel(id="live_avg_response_time", title="Average AI response time (5 min)",
          description="How long did AI answers take, on average, in the last five minutes?",
          query=LiveQuery(field="avg_ai_response_time_ms"), visualisation=Visualisation.stat,
          unit="ms", refresh_seconds=LIVE, better="down"),
    Panel(id="live_error_rate", title="Error rate (5 min)",
          description="What share of the last five minutes' events were errors or failures?",
          query=LiveQuery(field="error_rate_percent"), visualisation=Visualisation.stat,
          unit="percent", refresh_seconds=LIVE, better="down"),
    Panel(id="live_events_per_second", title="Events per second (1 min)",
          description="How many events per second arrived over the last minute?",
          query=LiveQuery(field="events_per_second"), visualisation=Visualisation.stat,
          unit="events/s", refresh_seconds=LIVE, better=None),
    # -- activity, from the events -------------------------------------------------------------
    Panel(id="active_users", title="Active users",
          description="How many distinct people did anything in the range?",
          query=SqlQuery(file="active_users"), visualisation=Visualisation.stat,
          unit="users", filters=EVENT_FILTERS),
    Panel(id="chat_messages", title="Chat volume",
          description="How many prompts did people send in the range?",
          query=SqlQuery(file="chat_messages"), visualisation=Visualisation.stat,
          unit="messages", filters=EVENT_FILTERS),
    Panel(id="chat_volume", title="Chat volume by hour",
          description="When do people chat? Prompts and answers per hour (per day beyond 3 days).",
          query=SqlQuery(file="chat_volume"), visualisation=Visualisation.timeseries,
          unit="messages", filters=EVENT_FILTERS, wide=True),
    Panel(id="top_features", title="Top features by usage",
          description="Which features do people use most (feature_usage events)?",
          query=SqlQuery(file="top_features"), visualisation=Visualisation.bar,
          unit="uses", filters=EVENT_FILTERS),
    Panel(id="health_score", title="System health score",
          description="Is the service healthy? 0-100 from the store, errors, rejected events, "
                      "p95 AI response time and data freshness (formula in panels.py).",
          query=SqlQuery(file="health_signals", shape="health_score"),
          visualisation=Visualisation.stat, unit="score"),
    Panel(id="session_duration", title="Average session duration",
          description="How long does a session last, from its first to its last event?",
          query=SqlQuery(file="session_duration"), visualisation=Visualisation.stat,
          unit="seconds", filters=EVENT_FILTERS, better=None),
    Panel(id="usage_heatmap", title="Usage patterns (hour × weekday)",
          description="At which hours of which weekdays, in your time zone, are people active?",
          query=SqlQuery(file="usage_heatmap"), visualisation=Visualisation.heatmap,
          unit="events", filters=EVENT_FILTERS, wide=True),
    Panel(id="user_segments", title="User segments",
          description="New, casual, regular and power users by their activity in the range "
                      "(definitions in sql/user_segments.sql).",
          query=SqlQuery(file="user_segments"), visualisation=Visualisation.pie,
          unit="users", filters=EVENT_FILTERS),
    # -- prompts -------------------------------------------------------------------------------
    Panel(id="follow_up_rate", title="Follow-up question rate",
          description="What share of prompts were follow-up questions?",
          query=SqlQuery(file="follow_up_rate"), visualisation=Visualisation.stat,
          unit="percent", filters=EVENT_FILTERS),
    Panel(id="follow_up_trend", title="Follow-up question rate over time",
          description="Is the share of follow-up questions rising or falling?",
          query=SqlQuery(file="follow_up_trend"), visualisation=Visualisation.timeseries,
          unit="percent", filters=EVENT_FILTERS),
    Panel(id="prompt_terms", title="Common terms",
          description="Which words come up most in prompts (sanitised text, without stop words "
                      "or placeholders such as [EMAIL])?",
          query=SqlQuery(file="prompt_terms"),
          visualisation=Visualisation.wordcloud, unit="prompts", filters=PROMPT_FILTERS,
          wide=True),
    Panel(id="prompt_categories", title="Prompt categories",
          description="What are people asking about?",
          query=ReportQuery(report="prompts", field="category_distribution"),
          visualisation=Visualisation.pie, unit="prompts", filters=(Filter.category,),
          click_filter=Filter.category),
    Panel(id="complexity_trend", title="Prompt complexity trend",
          description="Are prompts getting more complex (mean score 0-1)?",
          query=ReportQuery(report="prompts", field="complexity_trend"),
          visualisation=Visualisation.timeseries, unit="score", filters=(Filter.category,)),
    Panel(id="frequent_questions", title="Most frequent questions",
          description="Which questions are asked again and again (same normalised text)?",
          query=ReportQuery(report="prompts", field="most_frequent"),
          visualisation=Visualisation.table, unit="prompts", filters=(Filter.category,),
          wide=True),
    Panel(id="unanswered_questions", title="Unanswered questions",
          description="Which prompts got no AI answer, or an error after it?",
          query=ReportQuery(report="prompts", field="unanswered"),
          visualisation=Visualisation.table, unit="prompts", filters=(Filter.category,),
          wide=True),
    # -- journeys ------------------------------------------------------------------------------
    Panel(id="journey_sankey", title="User journeys",
          description="How do people move from page to page within a session?",
          query=ReportQuery(report="journeys", field="paths"),
          visualisation=Visualisation.sankey, unit="moves", click_filter=Filter.page_path,
          wide=True),
    Panel(id="cohort_retention", title="Weekly cohort retention",
          description="Of the people who started in a week, what share came back each week after?",
          query=ReportQuery(report="journeys", field="cohorts"),
          visualisation=Visualisation.cohort_matrix, unit="percent", wide=True),
    Panel(id="funnel_onboarding", title="Onboarding funnel",
          description="How many new people reach a first chat, a feature, and regular use?",
          query=ReportQuery(report="journeys", field="onboarding"),
          visualisation=Visualisation.funnel, unit="users"),
    Panel(id="funnel_value_realisation", title="Value realisation funnel",
          description="How many people go from a first interaction to identified cost savings?",
          query=ReportQuery(report="journeys", field="value_realisation"),
          visualisation=Visualisation.funnel, unit="users"),
    # -- spend ---------------------------------------------------------------------------------
    Panel(id="spend_total", title="Total AI spend",
          description="What did AI answers cost in the range (reported cost, else estimated)?",
          query=ReportQuery(report="ai-spend", field="total_spend_cents"),
          visualisation=Visualisation.stat, unit="usd_cents", better=None),
    Panel(id="spend_per_active_user", title="Spend per active user",
          description="What does one active person cost?",
          query=ReportQuery(report="ai-spend", field="spend_per_active_user_cents"),
          visualisation=Visualisation.stat, unit="usd_cents", better=None),
    Panel(id="spend_per_outcome", title="Spend per successful outcome",
          description="What does one completed thread or piece of positive feedback cost?",
          query=ReportQuery(report="ai-spend", field="cost_per_successful_outcome_cents"),
          visualisation=Visualisation.stat, unit="usd_cents", better="down"),
    Panel(id="spend_projection", title="Projected spend, next 30 days",
          description="Where is spend heading (a least-squares line through the daily spend)?",
          query=ReportQuery(report="ai-spend", field="projected_next_30_days_cents"),
          visualisation=Visualisation.stat, unit="usd_cents", better=None),
    Panel(id="spend_by_model", title="Spend by model",
          description="Which models cost most?",
          query=ReportQuery(report="ai-spend", field="by_model"),
          visualisation=Visualisation.bar, unit="usd_cents", click_filter=Filter.model),
    Panel(id="spend_daily", title="Daily spend and projection",
          description="How does spend move from day to day (UTC days), and where is it heading "
                      "over the next 30 days (least-squares line)?",
          query=ReportQuery(report="ai-spend", field="daily"),
          visualisation=Visualisation.timeseries, unit="usd_cents", wide=True),
    Panel(id="spend_survey", title="Reported vs measured spend",
          description="What do people say they spend on AI (survey means, their units) beside "
                      "what we measured (USD)?",
          query=ReportQuery(report="ai-spend", field="survey_reported"),
          visualisation=Visualisation.bar, unit="usd"),
    # -- feedback ------------------------------------------------------------------------------
    Panel(id="nps", title="Net Promoter Score",
          description="% promoters (9-10) minus % detractors (0-6), of NPS answers.",
          query=ReportQuery(report="feedback", field="nps"),
          visualisation=Visualisation.stat, unit="score"),
    Panel(id="csat", title="Customer satisfaction",
          description="Share of CSAT answers scoring 4 or 5.",
          query=ReportQuery(report="feedback", field="csat_percent"),
          visualisation=Visualisation.stat, unit="percent"),
    Panel(id="feedback_trend", title="Feature requests and bug reports",
          description="Are people asking for more, or reporting more bugs (per UTC day)?",
          query=SqlQuery(file="feedback_trend"), visualisation=Visualisation.timeseries,
          unit="reports", wide=True),
    Panel(id="survey_scales", title="Survey answers by scale",
          description="How do people answer each kind of survey question on its 1-10 scale?",
          query=ReportQuery(report="feedback", field="surveys"),
          visualisation=Visualisation.bar, unit="answers", wide=True),
)  # fmt: skip

DASHBOARDS: tuple[Dashboard, ...] = (
    Dashboard(
        name="user-engagement",
        title="User Engagement",
        description="Right now: who is here, chatting, waiting on answers, hitting errors.",
        panels=("live_active_users", "live_active_chat_sessions", "live_avg_response_time",
                "live_error_rate", "live_events_per_second"),
        refresh_seconds=LIVE,
        live=True,
    ),
    Dashboard(
        name="executive-overview",
        title="Executive Overview",
        description="Usage, spend, satisfaction and the service's health at a glance.",
        panels=("live_active_users", "active_users", "chat_messages", "spend_total", "nps",
                "follow_up_rate", "health_score", "chat_volume", "top_features"),
    ),
    Dashboard(
        name="prompt-analytics",
        title="Prompt Analytics",
        description="What people ask, when, how often they follow up, and what goes unanswered.",
        panels=("follow_up_rate", "prompt_terms", "usage_heatmap", "follow_up_trend",
                "prompt_categories", "complexity_trend", "frequent_questions",
                "unanswered_questions"),
    ),
    Dashboard(
        name="user-behavior",
        title="User Behavior",
        description="How people move, come back, convert, and which kinds of users we have.",
        panels=("active_users", "session_duration", "journey_sankey", "cohort_retention",
                "user_segments", "funnel_onboarding", "funnel_value_realisation"),
    ),
    Dashboard(
        name="ai-spend",
        title="AI Spend",
        description="What AI costs, per person and per outcome, by model, and where it heads.",
        panels=("spend_total", "spend_per_active_user", "spend_per_outcome", "spend_projection",
                "spend_daily", "spend_by_model", "spend_survey"),
    ),
    Dashboard(
        name="feedback",
        title="Feedback",
        description="NPS, satisfaction, requests, bug reports and survey answers.",
        panels=("nps", "csat", "feedback_trend", "survey_scales"),
    ),
)  # fmt: skip

PANELS_BY_ID: dict[str, Panel] = {panel.id: panel for panel in PANELS}
DASHBOARDS_BY_NAME: dict[str, Dashboard] = {board.name: board for board in DASHBOARDS}
