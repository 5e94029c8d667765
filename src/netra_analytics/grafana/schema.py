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


def _closest(error: Any) -> Any:
    """For a value matching none of a choice (a panel is a Panel or a RowPanel), the branch
    error reaching deepest into the value (the branch it was meant for gets furthest), so the
    message names the field at fault rather than the whole panel."""
    while error.context:
        error = max(error.context, key=lambda e: len(e.absolute_path))
    return error


def validate_dashboard(doc: dict[str, Any]) -> list[str]:
    """Every way `doc` breaks the schema, one message each naming where (`panels/3/gridPos/h:
    'tall' is not of type 'integer'`); empty when it is valid."""
    validator = jsonschema.Draft7Validator(dashboard_schema())
    errors = [_closest(e) for e in validator.iter_errors(doc)]
    errors.sort(key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]
