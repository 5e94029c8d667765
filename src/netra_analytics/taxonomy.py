"""The event taxonomy, defined once.

Each event type is a msgspec Struct of its properties plus the rule that maps it onto the
generic columns of `frontend_events` (DESIGN.md, "Event columns"). The validator, the JSON
Schema published at `/api/analytics/schema`, the column mapping and the docs all read from
`EVENT_TYPES`; nothing else lists the event types.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec

NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
ShortText = Annotated[str, msgspec.Meta(max_length=256)]
LongText = Annotated[str, msgspec.Meta(max_length=65_536)]


class Properties(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Base of every event type's properties: unknown fields are an error, not silently kept."""


# --- User interaction events ---------------------------------------------------------------


class ChatInteraction(Properties):
    thread_id: Identifier
    message_id: Identifier
    message_type: Literal["user_prompt", "ai_response", "system_message"]
    prompt_length: NonNegativeInt
    is_follow_up: bool
    prompt_text: LongText | None = None
    response_length: NonNegativeInt | None = None
    response_time_ms: NonNegativeFloat | None = None
    model_used: ShortText | None = None
    tokens_consumed: NonNegativeInt | None = None
    # Optional detail for cost: the split of tokens_consumed, and the cost the app was billed.
    input_tokens: NonNegativeInt | None = None
    output_tokens: NonNegativeInt | None = None
    cached_tokens: NonNegativeInt | None = None
    cost_cents: NonNegativeFloat | None = None


class ThreadLifecycle(Properties):
    thread_id: Identifier
    action: Literal["created", "continued", "completed", "abandoned"]
    message_count: NonNegativeInt | None = None
    duration_seconds: NonNegativeFloat | None = None


class FeatureUsage(Properties):
    feature_name: Identifier
    action: Identifier
    success: bool
    error_code: ShortText | None = None
    duration_ms: NonNegativeFloat | None = None


# --- Survey and feedback events ------------------------------------------------------------


class SurveyResponse(Properties):
    survey_id: Identifier
    question_id: Identifier
    question_type: Literal["pain_perception", "magic_wand", "spending", "planning"]
    response_value: LongText | None = None
    response_scale: Annotated[int, msgspec.Meta(ge=1, le=10)] | None = None
    ai_spend_last_month: NonNegativeFloat | None = None
    ai_spend_next_quarter: NonNegativeFloat | None = None


# The scale of a feedback score depends on its kind; other kinds carry no score range.
FEEDBACK_SCORE_RANGES = {"nps": (0, 10), "csat": (1, 5)}


class FeedbackSubmission(Properties):
    feedback_type: Literal["nps", "csat", "feature_request", "bug_report"]
    score: int | None = None
    comment: LongText | None = None
    context_thread_id: ShortText | None = None

    def __post_init__(self) -> None:
        bounds = FEEDBACK_SCORE_RANGES.get(self.feedback_type)
        if bounds and self.score is not None and not bounds[0] <= self.score <= bounds[1]:
            raise ValueError(
                f"score {self.score} is outside {bounds[0]}..{bounds[1]} for {self.feedback_type}"
                " - at `$.score`"
            )


# --- Technical events ----------------------------------------------------------------------


class PerformanceMetric(Properties):
    metric_type: Literal["page_load", "api_call", "websocket", "render"]
    duration_ms: NonNegativeFloat
    success: bool
    error_details: LongText | None = None


class ErrorTracking(Properties):
    error_type: Identifier
    error_message: LongText
    user_impact: Literal["critical", "high", "medium", "low"]
    stack_trace: LongText | None = None


# --- The request's context: who and where, shared by every event of a request ---------------

PageText = Annotated[str, msgspec.Meta(max_length=2048)]
Tag = Annotated[str, msgspec.Meta(max_length=64)]


OptionalIdentifier = Annotated[str, msgspec.Meta(max_length=256)]


class Context(msgspec.Struct, frozen=True):
    """Who and where, shared by every event of a request.

    `user_id` is the signed-in person's id, `anonymous_id` the browser's stable id; at least one
    must be present (see `ingest.identity`), and one carrying both links the browser to the person.
    After validation `user_id` holds the id the events are stored and counted under.
    `consent` is the visitor's answer to analytics storage, for sources that ask it themselves:
    `denied` drops the request's events unstored (`ingest.consent`); absent means granted.
    """

    session_id: Identifier
    user_id: OptionalIdentifier = ""
    anonymous_id: OptionalIdentifier = ""
    page_path: PageText = ""
    page_title: PageText = ""
    referrer: PageText = ""
    gtm_container_id: Tag = ""
    environment: Tag = ""
    app_version: Tag = ""
    consent: Literal["granted", "denied", ""] = ""


# --- Mapping onto the generic columns ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EventType:
    name: str
    properties: type[Properties]
    category: Literal["interaction", "feedback", "technical"]
    action: Callable[[Any], str]
    label: Callable[[Any], str]
    value: Callable[[Any], float]
    description: str

    def columns(self, props: Properties) -> tuple[str, str, str, float]:
        """event_category, event_action, event_label, event_value for one event."""
        return self.category, self.action(props), self.label(props), self.value(props)


def _text(field: str) -> Callable[[Any], str]:
    def get(props: Any) -> str:
        value = getattr(props, field)
        return "" if value is None else str(value)

    return get


def _number(field: str) -> Callable[[Any], float]:
    def get(props: Any) -> float:
        value = getattr(props, field)
        return 0.0 if value is None else float(value)

    return get


EVENT_TYPES: dict[str, EventType] = {
    t.name: t
    for t in (
        EventType(
            "chat_interaction",
            ChatInteraction,
            "interaction",
            _text("message_type"),
            _text("model_used"),
            _number("tokens_consumed"),
            "A chat message: the user's prompt, the AI's response or a system message.",
        ),
        EventType(
            "thread_lifecycle",
            ThreadLifecycle,
            "interaction",
            _text("action"),
            _text("thread_id"),
            _number("message_count"),
            "A chat thread was created, continued, completed or abandoned.",
        ),
        EventType(
            "feature_usage",
            FeatureUsage,
            "interaction",
            _text("action"),
            _text("feature_name"),
            _number("duration_ms"),
            "A product feature was used, successfully or not.",
        ),
        EventType(
            "survey_response",
            SurveyResponse,
            "feedback",
            _text("question_type"),
            _text("survey_id"),
            _number("response_scale"),
            "One answer to one survey question.",
        ),
        EventType(
            "feedback_submission",
            FeedbackSubmission,
            "feedback",
            _text("feedback_type"),
            _text("context_thread_id"),
            _number("score"),
            "NPS, CSAT, a feature request or a bug report.",
        ),
        EventType(
            "performance_metric",
            PerformanceMetric,
            "technical",
            _text("metric_type"),
            lambda p: "success" if p.success else "failure",
            _number("duration_ms"),
            "How long a page load, API call, websocket operation or render took.",
        ),
        EventType(
            "error_tracking",
            ErrorTracking,
            "technical",
            _text("user_impact"),
            _text("error_type"),
            lambda p: 1.0,
            "An error the user may have seen.",
        ),
    )
}


def _free_text_fields() -> frozenset[str]:
    names = set()
    for t in EVENT_TYPES.values():
        for f in msgspec.structs.fields(t.properties):
            if f.type in (LongText, LongText | None):
                names.add(f.encode_name)
    return frozenset(names)


# Fields where a person types what they like: kept only sanitised or redacted outside the
# event's own row (logs, rejected_events, live state).
FREE_TEXT_FIELDS = _free_text_fields()
STRUCTURED_FIELDS = (
    frozenset(
        f.encode_name for t in EVENT_TYPES.values() for f in msgspec.structs.fields(t.properties)
    )
    - FREE_TEXT_FIELDS
)


# --- Validation ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FieldError:
    field: str
    message: str


_PATH = re.compile(r"\s*-\s*at\s*`\$(?P<path>[^`]*)`\s*$")


def field_error(exc: msgspec.ValidationError, prefix: str) -> FieldError:
    """Turn msgspec's "Expected `int`, got `str` - at `$.x`" into (prefix.x, message)."""
    text = str(exc)
    match = _PATH.search(text)
    path = match.group("path").lstrip(".") if match else ""
    message = text[: match.start()] if match else text
    missing = re.match(r"Object missing required field `(?P<f>[^`]+)`", message)
    unknown = re.match(r"Object contains unknown field `(?P<f>[^`]+)`", message)
    if missing or unknown:
        found = missing or unknown
        assert found is not None
        path = f"{path}.{found.group('f')}".lstrip(".")
        message = "required field is missing" if missing else "unknown field"
    return FieldError(f"{prefix}.{path}".strip(".") if path else prefix, message)


def properties_errors(event_type: EventType, raw: bytes) -> list[FieldError]:
    """Every problem with one event's properties, not just the first.

    The hot path decodes in one msgspec call, which stops at the first problem; this slower
    path runs only for invalid events, so that an integrator sees all of them at once.
    """
    try:
        values = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        return [FieldError("properties", f"not valid JSON: {exc}")]
    if not isinstance(values, dict):
        return [FieldError("properties", "must be an object")]
    if len(values) > MAX_PROPERTIES:  # one error, not one per hostile key
        return [FieldError("properties", f"{len(values)} properties; the limit is "
                                         f"{MAX_PROPERTIES} per event")]  # fmt: skip
    errors: list[FieldError] = []
    fields = msgspec.structs.fields(event_type.properties)
    known = {f.encode_name for f in fields}
    for name in values:
        if name not in known:  # the name as sent, cut: it is echoed in the reply and stored
            errors.append(FieldError(f"properties.{name[:MAX_NAME_ECHO]}", "unknown field"))
    for f in fields:
        if f.encode_name not in values:
            if f.required:
                errors.append(
                    FieldError(f"properties.{f.encode_name}", "required field is missing")
                )
            continue
        try:
            msgspec.convert(values[f.encode_name], f.type, strict=True)
        except msgspec.ValidationError as exc:
            errors.append(FieldError(f"properties.{f.encode_name}", field_error(exc, "").message))
    if not errors:
        try:
            msgspec.convert(values, event_type.properties, strict=True)
        except msgspec.ValidationError as exc:
            errors.append(field_error(exc, "properties"))
    return errors


# --- JSON Schema ---------------------------------------------------------------------------


def json_schema() -> dict[str, Any]:
    """The taxonomy and the request body as one JSON Schema document (draft 2020-12)."""
    names = list(EVENT_TYPES)
    structs: list[type[msgspec.Struct]] = [t.properties for t in EVENT_TYPES.values()]
    structs.append(Context)
    _, components = msgspec.json.schema_components(structs, ref_template="#/$defs/{name}")
    components[Context.__name__]["anyOf"] = [
        {"required": ["user_id"]},
        {"required": ["anonymous_id"]},
    ]
    variants = []
    components[FeedbackSubmission.__name__]["allOf"] = [
        {
            "if": {"properties": {"feedback_type": {"const": kind}}, "required": ["score"]},
            "then": {"properties": {"score": {"minimum": low, "maximum": high}}},
        }
        for kind, (low, high) in FEEDBACK_SCORE_RANGES.items()
    ]
    for t in EVENT_TYPES.values():
        ref = {"$ref": f"#/$defs/{t.properties.__name__}"}
        components[t.properties.__name__]["description"] = t.description
        variants.append(
            {
                "if": {"properties": {"event_type": {"const": t.name}}},
                "then": {"properties": {"properties": ref}},
            }
        )
    event = {
        "type": "object",
        "required": ["event_type", "properties"],
        "additionalProperties": False,
        "properties": {
            "event_type": {"enum": names},
            "timestamp": {"type": "string", "format": "date-time"},
            "event_id": {"type": "string", "format": "uuid"},
            "properties": {"type": "object"},
        },
        "allOf": variants,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Netra Analytics event batch",
        "type": "object",
        "required": ["events", "context"],
        "properties": {
            "events": {"type": "array", "items": {"$ref": "#/$defs/Event"}, "maxItems": MAX_EVENTS},
            "context": {"$ref": "#/$defs/Context"},
            "sent_at": {
                "type": "string",
                "format": "date-time",
                "description": "The client's clock when it sent the request: corrects event times",
            },
        },
        "$defs": {"Event": event, **components},
    }


MAX_EVENTS = 500
# Properties of one event: every type has at most 14 known ones, so more is hostile or a bug;
# each unknown one is an error, so an event carries no keys beyond its type's.
MAX_PROPERTIES = 64
MAX_NAME_ECHO = 64  # characters of an unknown property's name quoted back
MAX_BODY_BYTES = 1 << 20
