from __future__ import annotations

from typing import Any

import jsonschema
import msgspec
import pytest

from netra_analytics.taxonomy import EVENT_TYPES, json_schema, properties_errors
from tests.factories import ENUMS, EXAMPLES, REQUIRED, body, event

VALIDATOR = jsonschema.Draft202012Validator(json_schema())


def _errors(event_type: str, props: dict[str, Any]) -> list[tuple[str, str]]:
    raw = msgspec.json.encode(props)
    return [(e.field, e.message) for e in properties_errors(EVENT_TYPES[event_type], raw)]


def _decodes(event_type: str, props: dict[str, Any]) -> bool:
    try:
        msgspec.json.decode(msgspec.json.encode(props), type=EVENT_TYPES[event_type].properties)
    except msgspec.ValidationError:
        return False
    return True


def test_every_spec_event_type_is_defined() -> None:
    assert set(EVENT_TYPES) == set(EXAMPLES) == set(REQUIRED)


@pytest.mark.parametrize("event_type", EXAMPLES)
def test_valid_example_passes_validator_and_schema(event_type: str) -> None:
    assert _decodes(event_type, EXAMPLES[event_type])
    assert _errors(event_type, EXAMPLES[event_type]) == []
    VALIDATOR.validate(body([event(event_type)]))


@pytest.mark.parametrize(
    ("event_type", "field"), [(t, f) for t, fields in REQUIRED.items() for f in fields]
)
def test_each_required_field_missing(event_type: str, field: str) -> None:
    props = {k: v for k, v in EXAMPLES[event_type].items() if k != field}
    assert not _decodes(event_type, props)
    assert _errors(event_type, props) == [(f"properties.{field}", "required field is missing")]
    assert not VALIDATOR.is_valid(body([{**event(event_type), "properties": props}]))


@pytest.mark.parametrize(
    ("event_type", "field"), [(t, f) for t, enums in ENUMS.items() for f in enums]
)
def test_each_enum_violated(event_type: str, field: str) -> None:
    props = {**EXAMPLES[event_type], field: "not_a_member"}
    assert not _decodes(event_type, props)
    [(name, message)] = _errors(event_type, props)
    assert name == f"properties.{field}" and "not_a_member" in message
    assert not VALIDATOR.is_valid(body([{**event(event_type), "properties": props}]))
    for member in ENUMS[event_type][field]:
        props = {**EXAMPLES[event_type], field: member}
        props.pop("score", None)  # a score's range depends on the kind of feedback
        assert _decodes(event_type, props)


def _wrong_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int | float):
        return "12"
    return 12


@pytest.mark.parametrize(
    ("event_type", "field"), [(t, f) for t, props in EXAMPLES.items() for f in props]
)
def test_each_field_with_the_wrong_type(event_type: str, field: str) -> None:
    props = {**EXAMPLES[event_type], field: _wrong_value(EXAMPLES[event_type][field])}
    assert not _decodes(event_type, props)
    [(name, message)] = _errors(event_type, props)
    assert name == f"properties.{field}"
    assert message.startswith("Expected")
    assert not VALIDATOR.is_valid(body([{**event(event_type), "properties": props}]))


def test_integers_are_not_booleans_and_floats_accept_integers() -> None:
    assert not _decodes("chat_interaction", {**EXAMPLES["chat_interaction"], "prompt_length": True})
    assert not _decodes("chat_interaction", {**EXAMPLES["chat_interaction"], "prompt_length": 1.5})
    assert _decodes("performance_metric", {**EXAMPLES["performance_metric"], "duration_ms": 12})


@pytest.mark.parametrize(("scale", "ok"), [(0, False), (1, True), (10, True), (11, False)])
def test_response_scale_is_one_to_ten(scale: int, ok: bool) -> None:
    props = {**EXAMPLES["survey_response"], "response_scale": scale}
    assert _decodes("survey_response", props) is ok
    assert (_errors("survey_response", props) == []) is ok
    assert VALIDATOR.is_valid(body([{**event("survey_response"), "properties": props}])) is ok


@pytest.mark.parametrize(
    ("kind", "score", "ok"),
    [("nps", 0, True), ("nps", 10, True), ("nps", 11, False), ("csat", 0, False),
     ("csat", 5, True), ("csat", 6, False), ("feature_request", 99, True)],
)  # fmt: skip
def test_feedback_score_range_depends_on_kind(kind: str, score: int, ok: bool) -> None:
    props = {**EXAMPLES["feedback_submission"], "feedback_type": kind, "score": score}
    assert _decodes("feedback_submission", props) is ok
    errors = _errors("feedback_submission", props)
    assert (errors == []) is ok
    if not ok:
        assert errors[0][0] == "properties.score"
    wire = {**event("feedback_submission"), "properties": props}
    assert VALIDATOR.is_valid(body([wire])) is ok


def test_negative_counts_are_rejected() -> None:
    props = {**EXAMPLES["chat_interaction"], "tokens_consumed": -1}
    assert _errors("chat_interaction", props)[0][0] == "properties.tokens_consumed"


def test_unknown_field_and_all_errors_at_once() -> None:
    props = {"thread_id": "t", "message_type": "bogus", "prompt_length": "x", "typo_field": 1}
    fields = {f for f, _ in _errors("chat_interaction", props)}
    assert fields == {
        "properties.typo_field",
        "properties.message_id",
        "properties.message_type",
        "properties.prompt_length",
        "properties.is_follow_up",
    }


@pytest.mark.parametrize(
    ("event_type", "category", "action", "label", "value"),
    [
        ("chat_interaction", "interaction", "user_prompt", "gpt-4o", 120.0),
        ("thread_lifecycle", "interaction", "created", "thread-1", 1.0),
        ("feature_usage", "interaction", "open", "cost_explorer", 42.0),
        ("survey_response", "feedback", "spending", "q4-pulse", 7.0),
        ("feedback_submission", "feedback", "nps", "thread-1", 9.0),
        ("performance_metric", "technical", "page_load", "success", 1234.5),
        ("error_tracking", "technical", "medium", "TypeError", 1.0),
    ],
)
def test_column_mapping_is_designs_table(
    event_type: str, category: str, action: str, label: str, value: float
) -> None:
    t = EVENT_TYPES[event_type]
    props = msgspec.convert(EXAMPLES[event_type], t.properties)
    assert t.columns(props) == (category, action, label, value)


def test_failed_performance_metric_is_labelled_failure() -> None:
    t = EVENT_TYPES["performance_metric"]
    props = msgspec.convert({**EXAMPLES["performance_metric"], "success": False}, t.properties)
    assert t.columns(props)[2] == "failure"
