"""A compact, seeded generator of realistic traffic for the dashboards' tests: every panel of
the catalog gets rows from it. (The product's `netra-analytics demo` generator replaces it once
merged; this one stays small and keeps each event it made, for the independent counts.)

Users sign up on different days (weekly cohorts) and come back less as weeks pass; each visit is
a session moving between pages (the Sankey), chatting (a vocabulary across the prompt
categories, repeats, follow-ups, some unanswered, some with an e-mail address that the
sanitiser replaces), using features (cost savings identified by some), answering the spend
survey, giving NPS and CSAT, reporting bugs and asking for features, hitting errors.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

PAGES = ["/chat", "/dashboard", "/cost-explorer", "/models", "/settings", "/reports"]
ENVIRONMENTS = [("production", 0.8), ("staging", 0.2)]
VERSIONS = ["1.4.2", "1.5.0"]
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-20241022"]
FEATURES = ["cost_explorer", "model_compare", "usage_report", "budget_alerts", "prompt_library"]
QUESTIONS = [
    "How do I reduce my OpenAI spend this month?",
    "Why is the latency of gpt-4o so high in the afternoon?",
    "Which model should I pick for summarising support tickets?",
    "How can I evaluate the quality of answers from my assistant?",
    "My pipeline throws a timeout error when calling the API, how do I debug it?",
    "How do I connect my Snowflake warehouse to the usage data?",
    "Why was my invoice higher than the budget alert said?",
    "Compare the cost of claude haiku and gpt-4o-mini for classification",
    "Plan a migration of our batch jobs to a cheaper model",
    "What is the token cost of caching system prompts?",
    "How do I set a monthly budget per team?",
    "Explain why streaming responses feel faster",
    # Long, multi-part prompts with constraints (complexity >= 0.6: the value funnel's step).
    "Compare the latency, cost per million tokens and accuracy of gpt-4o, claude-3-5-haiku and "
    "gpt-4o-mini for our retrieval pipeline; first list the constraints (p95 under 800 ms, budget "
    "under $2,000 a month, EU data residency), then rank them in a table with the trade-offs, and "
    "finally propose a migration plan with rollback steps and the metrics we must monitor.",
    "We run 40k batch classification requests per day on gpt-4o with a 1,200-token system prompt. "
    "Step by step: estimate the monthly spend with and without prompt caching, evaluate whether "
    "fine-tuning a smaller model would keep F1 above 0.92, and write the SQL to track the cost per "
    "ticket by team in ClickHouse, grouped by week.",
]
FOLLOW_UPS = [
    "And what about the embeddings cost?",
    "Can you show that per team?",
    "What if we cache the answers?",
    "Does that hold for batch requests too?",
]


@dataclass
class Sent:
    """One generated request: its context and events, as posted."""

    context: dict[str, Any]
    events: list[dict[str, Any]]


@dataclass
class Traffic:
    requests: list[Sent] = field(default_factory=list)

    def bodies(self) -> list[dict[str, Any]]:
        return [{"events": r.events, "context": r.context} for r in self.requests]

    def events(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Every event with its request's context."""
        return [(r.context, e) for r in self.requests for e in r.events]


_IDS = random.Random()  # event ids, reseeded by generate()


def _event(event_type: str, when: datetime, **properties: Any) -> dict[str, Any]:
    return {
        "event_type": event_type,
        "timestamp": when.isoformat(timespec="milliseconds"),
        "event_id": str(uuid.UUID(int=_IDS.getrandbits(128), version=4)),
        "properties": {k: v for k, v in properties.items() if v is not None},
    }


def generate(seed: int, *, users: int = 40, days: int = 35, now: datetime | None = None) -> Traffic:
    """Traffic over the `days` days before `now` (default: the current minute), deterministic
    for a seed and a `now`. Every event is at least a minute before `now`."""
    rng = random.Random(seed)
    _IDS.seed(seed)
    now = now or datetime.now(UTC).replace(second=0, microsecond=0)
    first_day = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    traffic = Traffic()
    for n in range(users):
        user = f"demo-user-{n:03d}"
        signup = rng.randrange(days)
        keen = rng.random()  # how often this person comes back
        environment = "production" if rng.random() < ENVIRONMENTS[0][1] else "staging"
        version = rng.choice(VERSIONS)
        for day in range(signup, days + 1):
            weeks_in = (day - signup) / 7
            chance = 1.0 if day == signup else keen * 0.7**weeks_in
            if rng.random() > chance:
                continue
            start = first_day + timedelta(days=day, hours=rng.choice([8, 9, 10, 11, 13, 14, 15, 16, 20]),
                                          minutes=rng.randrange(60))  # fmt: skip
            if start > now - timedelta(minutes=30):
                continue
            _session(rng, traffic, user, f"{user}-s{day}", start, environment, version)
    return traffic


def _session(
    rng: random.Random,
    traffic: Traffic,
    user: str,
    session: str,
    start: datetime,
    environment: str,
    version: str,
) -> None:
    when = start
    page = "/dashboard" if rng.random() < 0.6 else "/chat"
    for _ in range(rng.randint(2, 6)):
        events: list[dict[str, Any]] = [
            _event("performance_metric", when, metric_type="page_load",
                   duration_ms=round(rng.uniform(200, 2500), 1), success=rng.random() > 0.03)
        ]  # fmt: skip
        when += timedelta(seconds=rng.randint(2, 20))
        if page == "/chat":
            when = _chat(rng, events, when)
        elif page in ("/cost-explorer", "/models", "/reports"):
            feature = {"/cost-explorer": "cost_explorer", "/models": "model_compare",
                       "/reports": "usage_report"}[page]  # fmt: skip
            action = (
                "savings_identified"
                if feature == "cost_explorer" and rng.random() < 0.3
                else "open"
            )
            events.append(_event("feature_usage", when, feature_name=feature, action=action,
                                 success=rng.random() > 0.05, duration_ms=round(rng.uniform(20, 900), 1)))  # fmt: skip
        else:
            events.append(_event("feature_usage", when, feature_name=rng.choice(FEATURES[3:]),
                                 action="open", success=True, duration_ms=50.0))  # fmt: skip
        _feedback(rng, events, when)
        if rng.random() < 0.04:
            events.append(_event("error_tracking", when, error_type="TypeError",
                                 error_message="cannot read properties of undefined",
                                 user_impact=rng.choice(["low", "medium", "high"])))  # fmt: skip
        traffic.requests.append(
            Sent(
                {"user_id": user, "session_id": session, "page_path": page,
                 "page_title": page.strip("/").title() or "Home", "environment": environment,
                 "app_version": version, "gtm_container_id": "GTM-DEMO01"},
                events,
            )
        )  # fmt: skip
        when += timedelta(seconds=rng.randint(10, 120))
        page = rng.choice([p for p in PAGES if p != page])


def _chat(rng: random.Random, events: list[dict[str, Any]], when: datetime) -> datetime:
    thread = f"t-{uuid.UUID(int=rng.getrandbits(128))}"
    events.append(
        _event("thread_lifecycle", when, thread_id=thread, action="created", message_count=0)
    )
    turns = rng.randint(1, 3)
    for turn in range(turns):
        follow_up = turn > 0
        text = rng.choice(FOLLOW_UPS if follow_up else QUESTIONS)
        if rng.random() < 0.05:
            text += " Mail me at jane.doe@example.com"
        prompt_tokens = rng.randint(10, 300)
        message = f"m-{rng.getrandbits(48):x}"
        events.append(_event("chat_interaction", when, thread_id=thread, message_id=message,
                             message_type="user_prompt", prompt_text=text, prompt_length=len(text),
                             tokens_consumed=prompt_tokens, is_follow_up=follow_up))  # fmt: skip
        when += timedelta(seconds=rng.randint(1, 8))
        if rng.random() < 0.06:
            continue  # unanswered
        answer: dict[str, Any] = {
            "thread_id": thread, "message_id": f"{message}-a", "message_type": "ai_response",
            "model_used": rng.choice(MODELS), "tokens_consumed": rng.randint(100, 2500),
            "response_time_ms": round(rng.lognormvariate(7.0, 0.5), 1),
            "response_length": rng.randint(100, 4000), "prompt_length": 0, "is_follow_up": False,
        }  # fmt: skip
        if rng.random() < 0.3:
            answer["cost_cents"] = round(rng.uniform(0.05, 3.0), 4)
        events.append(_event("chat_interaction", when, **answer))
        when += timedelta(seconds=rng.randint(5, 60))
    action = "completed" if rng.random() < 0.6 else "abandoned"
    events.append(
        _event("thread_lifecycle", when, thread_id=thread, action=action, message_count=2 * turns)
    )
    return when + timedelta(seconds=2)


def _feedback(rng: random.Random, events: list[dict[str, Any]], when: datetime) -> None:
    roll = rng.random()
    if roll < 0.05:
        events.append(_event("feedback_submission", when, feedback_type="nps",
                             score=rng.choice([3, 6, 7, 8, 9, 9, 10, 10])))  # fmt: skip
    elif roll < 0.09:
        events.append(
            _event("feedback_submission", when, feedback_type="csat", score=rng.randint(2, 5))
        )
    elif roll < 0.11:
        events.append(_event("feedback_submission", when, feedback_type="feature_request",
                             comment="Please add a per-team budget view"))  # fmt: skip
    elif roll < 0.13:
        events.append(_event("feedback_submission", when, feedback_type="bug_report",
                             comment="The export button does nothing"))  # fmt: skip
    elif roll < 0.16:
        kind = rng.choice(["pain_perception", "magic_wand", "spending", "planning"])
        spend = float(rng.randrange(500, 20000, 500)) if kind == "spending" else None
        events.append(_event("survey_response", when, survey_id="q4-pulse", question_id=f"q-{kind}",
                             question_type=kind, response_scale=rng.randint(1, 10),
                             ai_spend_last_month=spend,
                             ai_spend_next_quarter=spend * 3.2 if spend else None))  # fmt: skip
