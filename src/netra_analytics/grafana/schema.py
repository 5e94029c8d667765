"""Validation of a dashboard JSON model against Grafana's published dashboard JSON schema
(draft-07, vendored in `schema/`, its source in `schema/SOURCE.md`)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema


@cache
def dashboard_schema() -> dict[str, Any]:
    text = (
        resources.files("netra_analytics.grafana") / "schema" / "dashboard.schema.json"
    ).read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_dashboard(doc: dict[str, Any]) -> list[str]:
    """Every way `doc` breaks the schema, one message each naming where (`panels/3/gridPos`);
    empty when it is valid."""
    validator = jsonschema.Draft7Validator(dashboard_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]
