"""Grafana alert rules for the service, as a unified-alerting provisioning file, and the contact
point and notification policy the operator fills in.

Each rule: a query (A: Prometheus over the service's `/metrics`, or ClickHouse where the store
itself knows best), reduced to its last value per series (B), compared with its threshold (C).
The thresholds are `Thresholds`' fields, documented there; `generate.build(thresholds)` and
`netra-analytics grafana generate --threshold NAME=VALUE` set them (the committed files hold the
defaults). Rules are built with grafana-foundation-sdk's alerting types (the HTTP API's shape)
and written in the file provisioning format (`groups` of rules under a folder title).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from grafana_foundation_sdk.builders import alerting
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting as alerting_model

from netra_analytics.grafana.dashboards import CLICKHOUSE, FOLDER, PROMETHEUS, Query

GROUP = "netra-analytics"
INTERVAL = "1m"
CONTACT_POINT = "netra-operators"
EXPRESSION = {"type": "__expr__", "uid": "__expr__"}
RANGE_SECONDS = 600  # what each query reads back: the last 10 minutes


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """When each rule fires (its value above the threshold for `for`)."""

    error_rate_percent: float = 5.0  # API answers that were 5xx, % of requests over 5 min
    # Newest stored event older than this: ingestion stalled (raise it for a product quiet at
    # night, whose traffic may pause longer without anything being wrong).
    data_age_seconds: float = 900.0
    tag_heartbeat_age_seconds: float = 900.0  # a container's tag silent for longer than this
    report_p95_seconds: float = 2.0  # p95 of report queries over 5 min
    rate_limited_per_second: float = 10.0  # events refused by the per-user limit, per second
    spool_backlog_bytes: float = 64 * 1024 * 1024  # spool backlog above this and growing
    redis_degraded_status: float = 0.5  # health status of redis: 1 degraded, 2 failing

    def replace(self, assignments: dict[str, float]) -> Thresholds:
        """A copy with these fields set; an unknown name is a ValueError naming the known."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(assignments) - known)
        if unknown:
            raise ValueError(f"unknown threshold {unknown[0]!r}; known: {', '.join(sorted(known))}")
        return dataclasses.replace(self, **assignments)


@dataclass(frozen=True)
class Rule:
    uid: str
    title: str
    summary: str  # the annotation the notification shows
    language: Literal["promql", "sql"]
    query: str
    threshold: str  # a field of Thresholds
    pending: str = "5m"  # `for`
    no_data: Literal["OK", "NoData", "Alerting", "KeepLast"] = "OK"


def _sql(name: str) -> str:
    return (resources.files("netra_analytics.grafana") / "sql" / f"{name}.sql").read_text()


def rules(embedded: bool = False) -> tuple[Rule, ...]:
    """The rules, one per failure the operators must hear about (with the embedded store,
    which Grafana cannot query, data freshness comes from the service's own gauge)."""
    stalled = (
        Rule("netra-ingestion-stalled", "Ingestion stalled",
             "The newest stored event is older than {threshold} s (data freshness).", "promql",
             "max(netra_data_freshness_seconds)", "data_age_seconds", no_data="Alerting")
        if embedded
        else Rule("netra-ingestion-stalled", "Ingestion stalled",
                  "The newest stored event is older than {threshold} s (data freshness).", "sql",
                  _sql("alert_ingestion_stalled"), "data_age_seconds", no_data="Alerting")
    )  # fmt: skip
    return (
        Rule("netra-error-rate", "Error rate over threshold",
             "More than {threshold} % of API requests answered 5xx over 5 minutes.", "promql",
             "100 * sum(rate(netra_api_requests_total{status_class=\"5xx\"}[5m]))"
             " / clamp_min(sum(rate(netra_api_requests_total[5m])), 1e-9)",
             "error_rate_percent"),
        stalled,
        Rule("netra-tag-heartbeat", "No tag heartbeat from a container",
             "A container's browser tag has not been heard for over {threshold} s.", "promql",
             "max by (container) (netra_tag_heartbeat_age_seconds)",
             "tag_heartbeat_age_seconds"),
        Rule("netra-report-latency", "Report latency p95 over threshold",
             "95th percentile of report queries above {threshold} s over 5 minutes.", "promql",
             "histogram_quantile(0.95, sum by (le) "
             "(rate(netra_query_performance_seconds_bucket{kind=\"report\"}[5m])))",
             "report_p95_seconds"),
        Rule("netra-rate-limited", "Rate-limit rejections spiking",
             "More than {threshold} events/s refused by the per-user rate limit.", "promql",
             "sum(rate(netra_event_ingestion_events_total{outcome=\"rate_limited\"}[5m]))",
             "rate_limited_per_second", pending="10m"),
        Rule("netra-spool-backlog", "Spool backlog growing",
             "The spool holds more than {threshold} bytes not yet stored, and it is growing.",
             "promql",
             "(sum(netra_spool_backlog_bytes))"
             " and (deriv(sum(netra_spool_backlog_bytes)[10m:1m]) > 0)",
             "spool_backlog_bytes", pending="10m"),
        Rule("netra-redis-degraded", "Redis degraded",
             "The Redis health check reports degraded (1) or failing (2).", "promql",
             "max(netra_health_status{check=\"redis\"})", "redis_degraded_status",
             pending="2m"),
    )  # fmt: skip


def query_model(rule: Rule) -> Query:
    if rule.language == "sql":
        return Query(
            {
                "refId": "A",
                "datasource": {"type": str(CLICKHOUSE.type_val), "uid": str(CLICKHOUSE.uid)},
                "editorType": "sql",
                "format": 1,
                "queryType": "table",
                "rawSql": rule.query,
            }
        )
    return Query(
        {
            "refId": "A",
            "datasource": {"type": str(PROMETHEUS.type_val), "uid": str(PROMETHEUS.uid)},
            "expr": rule.query,
            "instant": True,
            "range": False,
        }
    )


def _expression(ref_id: str, fields: dict[str, Any]) -> alerting.Query:
    return (
        alerting.Query(ref_id)
        .datasource_uid("__expr__")
        .model(Query({"refId": ref_id, "datasource": EXPRESSION, **fields}))
    )


def rule(found: Rule, thresholds: Thresholds) -> alerting.Rule:
    limit = getattr(thresholds, found.threshold)
    datasource = CLICKHOUSE if found.language == "sql" else PROMETHEUS
    return (
        alerting.Rule(found.title)
        .uid(found.uid)
        .condition("C")
        .with_query(
            alerting.Query("A")
            .datasource_uid(str(datasource.uid))
            .relative_time_range(alerting_model.RelativeTimeRange(from_val=RANGE_SECONDS, to=0))
            .model(query_model(found))
        )
        .with_query(
            _expression(
                "B",
                {
                    "type": "reduce",
                    "expression": "A",
                    "reducer": "last",
                    "settings": {"mode": "dropNN"},
                },
            )
        )
        .with_query(
            _expression(
                "C",
                {
                    "type": "threshold",
                    "expression": "B",
                    "conditions": [{"evaluator": {"type": "gt", "params": [limit]}}],
                },
            )
        )
        .for_val(found.pending)
        .no_data_state(found.no_data)
        .exec_err_state("Error")
        .labels({"service": "netra-analytics"})
        .annotations(
            {
                "summary": found.summary.format(threshold=f"{limit:g}"),
                "threshold_setting": found.threshold,
            }
        )
    )


# Keys of the HTTP API's rule that the file format has at the group level or not at all.
_API_ONLY = ("folderUID", "orgID", "ruleGroup")


def alert_rules_file(thresholds: Thresholds, embedded: bool = False) -> dict[str, Any]:
    """The alerting provisioning file (apiVersion 1): one group in the folder."""
    found = []
    for each in rules(embedded):
        model: dict[str, Any] = json.loads(
            json.dumps(rule(each, thresholds).build(), cls=JSONEncoder)
        )
        found.append({k: v for k, v in model.items() if k not in _API_ONLY})
    return {
        "apiVersion": 1,
        "groups": [
            {"orgId": 1, "name": GROUP, "folder": FOLDER, "interval": INTERVAL, "rules": found}
        ],
    }


def contact_points_file() -> dict[str, Any]:
    """An e-mail contact point whose addresses come from `GRAFANA_ALERT_EMAILS` (Grafana
    interpolates environment variables in provisioning files; `;`-separated), and the policy
    sending this folder's alerts to it. Replace the receiver with Slack, PagerDuty... as needed."""
    return {
        "apiVersion": 1,
        "contactPoints": [
            {
                "orgId": 1,
                "name": CONTACT_POINT,
                "receivers": [
                    {
                        "uid": "netra-operators-email",
                        "type": "email",
                        "settings": {"addresses": "$GRAFANA_ALERT_EMAILS", "singleEmail": True},
                        "disableResolveMessage": False,
                    }
                ],
            }
        ],
        "policies": [
            {
                "orgId": 1,
                "receiver": CONTACT_POINT,
                "group_by": ["grafana_folder", "alertname"],
                "group_wait": "30s",
                "group_interval": "5m",
                "repeat_interval": "4h",
            }
        ],
    }
