"""Realistic synthetic traffic for a fresh service: `netra-analytics demo`.

`demo_events()` yields the events of `users` people over the last `days` UTC days, in the
import's body shape (each event with its own `context`); `run()` posts them to a running
service's historical import in batches of the import's size and reports what was accepted.

What the traffic holds, so that every report and panel has something true to show:

- People sign up on different days of the range (weekly cohorts) and come back less and less
  (a daily return chance that decays from signup, by segment: power, regular, casual, one-off),
  so the cohort matrix shows decaying retention and the segments differ.
- Sessions move between pages (a Markov chain over the app's pages: the Sankey), each page load
  timed (`performance_metric`, some slow, a few failed), at the hours people work.
- Chat threads: prompts from a vocabulary across the classifier's categories (templates with
  slots, popular questions asked by many people, near-repeats, follow-ups, complex multi-part
  requests that reach the value funnel's "complex query"), answered by several models with token
  counts, response times and the cost the app was billed (`cost_cents`); threads are completed,
  abandoned or left open; a few prompts end in an error and stay unanswered.
- Features discovered and used (the onboarding funnel's "feature discovery"), cost savings
  identified in the cost explorer (the value funnel's last step), with realistic drop-off.
- The spend survey, NPS and CSAT, feature requests and bug reports, errors.

Deterministic: everything comes from `random.Random` seeded by (seed, users, days, person), and
event ids are UUIDv5 of the same and the event's ordinal, so a re-run with the same arguments on
the same UTC day sends the same events (the import stores nothing twice) plus those that have
"happened" since. Timestamps are laid out on the UTC days ending today, and events later than
`now` are not sent, so today's traffic runs up to the minute (the real-time panels).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

import orjson

from netra_analytics.ingest.process import IMPORT
from netra_analytics.progress import Progress

IMPORT_PATH = "/api/analytics/import"
NAMESPACE = uuid.UUID("6b1f3c1e-5a7d-4c55-9d43-0c2f8e1a7b90")  # of the demo's event ids
BATCH_EVENTS = IMPORT.max_events
MAX_ATTEMPTS = 8  # per batch, on 429/503 or a connection error
REQUEST_TIMEOUT = 60.0  # seconds per import request
NEEDS_ADMIN = (
    "The import is admin-only: pass an admin key with --api-key or NETRA_API_KEY (a fresh "
    "`make run` prints one on its first start; else `netra-analytics keys create --role admin "
    "--name demo`)."
)

BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
)

PAGES = {  # page -> (title, {next page: weight}); "exit" ends the session
    "/": ("Home", {"/chat": 5, "/dashboard": 3, "/cost-explorer": 2, "/models": 1, "exit": 1}),
    "/chat": ("Chat", {"/chat": 2, "/cost-explorer": 2, "/models": 1, "/dashboard": 1, "exit": 3}),
    "/dashboard": ("Dashboard", {"/chat": 3, "/cost-explorer": 2, "/settings": 1, "exit": 2}),
    "/cost-explorer": ("Cost explorer", {"/chat": 2, "/models": 1, "/dashboard": 1, "exit": 2}),
    "/models": ("Model comparison", {"/chat": 2, "/cost-explorer": 1, "exit": 2}),
    "/settings": ("Settings", {"/billing": 2, "/dashboard": 1, "exit": 2}),
    "/billing": ("Billing", {"/settings": 1, "/dashboard": 1, "exit": 3}),
}
FEATURES = {  # page -> features used there
    "/dashboard": ("usage_dashboard", "alerts"),
    "/cost-explorer": ("cost_explorer",),
    "/models": ("model_comparison", "prompt_library"),
    "/settings": ("alerts", "api_keys"),
    "/billing": ("budget_caps",),
    "/chat": ("prompt_library", "export"),
}

# model -> (share of answers, US$ per million input tokens, per million output, ms per token)
MODELS = {
    "gpt-4o": (0.30, 2.5, 10.0, 9.0),
    "gpt-4o-mini": (0.25, 0.15, 0.6, 4.0),
    "claude-3-5-sonnet": (0.20, 3.0, 15.0, 10.0),
    "claude-3-5-haiku": (0.10, 0.8, 4.0, 5.0),
    "gemini-1.5-flash": (0.10, 0.075, 0.3, 3.5),
    "o1-mini": (0.05, 3.0, 12.0, 25.0),
}

SLOTS = {
    "model": ("gpt-4o", "gpt-4o-mini", "Claude 3.5 Sonnet", "Claude Haiku", "Gemini Flash",
              "Llama 3 70B", "Mistral Large", "o1-mini"),
    "feature": ("support bot", "search", "summaries", "the onboarding assistant",
                "code review", "the sales copilot", "document QA"),
    "period": ("last week", "last month", "this quarter", "yesterday", "the last 30 days"),
    "source": ("Postgres", "BigQuery", "Snowflake", "Salesforce", "Zendesk", "S3", "Kafka"),
    "error": ("429", "503", "401", "timeout", "invalid JSON", "CORS", "context length exceeded"),
    "amount": ("2k", "5k", "10k", "25k", "50k"),
    "percent": ("10%", "20%", "30%", "40%"),
    "dimension": ("feature", "model", "team", "day", "user", "environment"),
    "format": ("table", "chart", "CSV", "short summary"),
}  # fmt: skip

# Per category of `prompts/classify.py`: templates with {slots}. Popular questions are the
# first of each list, so that many people ask the same things.
PROMPTS = {
    "cost_optimisation": (
        "How can I reduce my monthly OpenAI bill?",
        "Why did our token spend go up {period}?",
        "Which prompts cost us the most {period}?",
        "Would prompt caching cut the cost of {feature}?",
        "Is {model} cheaper than {model2} for {feature}?",
        "How much would we save by moving {feature} to {model}?",
        "Plan how to cut our AI spend by {percent} next quarter",
    ),
    "latency": (
        "Why are responses so slow today?",
        "What is the p95 latency of {model} for {feature}?",
        "How do I make {feature} answer faster?",
        "Does streaming reduce latency for {feature}?",
        "Why did latency spike {period}?",
    ),
    "model_selection": (
        "Which model should I use for {feature}?",
        "Compare {model} and {model2} for {feature}",
        "Is {model} good enough for {feature}?",
        "What is the best model for summarising long documents?",
        "Should we fine-tune {model} or use a bigger model?",
    ),
    "quality_evaluation": (
        "How do I evaluate answer quality for {feature}?",
        "Why is {model} hallucinating in {feature}?",
        "Show the accuracy of {feature} {period}",
        "How do I set up a rubric for grading {feature} answers?",
    ),
    "debugging": (
        "Why am I getting a {error} error from the API?",
        "The {feature} integration fails with {error}, how do I fix it?",
        "Requests to {model} keep failing with {error}",
        "How do I debug a {error} in the SDK?",
    ),
    "data_integration": (
        "How do I connect {source} to the platform?",
        "Can I export usage data to {source}?",
        "How do I sync events from {source} every hour?",
        "Set up a webhook that sends cost alerts to {source}",
    ),
    "account_billing": (
        "How do I download last month's invoice?",
        "How do I add a seat to our workspace?",
        "Can I change the card on our subscription?",
        "Send the invoice for {period} to {email}",
        "How do I upgrade our plan?",
    ),
    "general": (
        "Hello, what can you help me with?",
        "Summarise this week's usage in three bullet points",
        "Thanks, that was helpful",
        "Write a short update for my team about our AI costs",
    ),
}
# Multi-part, constrained, technical: above the value funnel's "complex query" (0.6).
COMPLEX_PROMPTS = (
    "Compare {model} and {model2} on p95 latency, accuracy and cost per 1k tokens for {feature}; "
    "we must stay under ${amount} a month without losing more than 2% accuracy. Also suggest a "
    "caching strategy and a batching plan, and list the risks.",
    "Plan a migration of {feature} from {model} to a cheaper model: 1) list the steps, 2) the "
    "expected savings per month, 3) the risks for quality; keep p95 latency under 800 ms, the "
    "token budget under ${amount} and the error rate under 1%.",
    "Write a SQL query over our usage schema that returns cost, tokens and p95 latency per model "
    "and per feature for {period}; also explain which index to add, and compare it with a "
    "ClickHouse materialized view that must refresh within 5 minutes.",
)
FOLLOW_UPS = (
    "What about {model}?",
    "Can you break that down by {dimension}?",
    "And for {period}?",
    "Can you show that as a {format}?",
    "Why did {feature} change {period}?",
    "How much would that save per month for {feature}?",
    "Is that still true for {model2}?",
    "Which of these matters most for {feature}?",
)


def _near_repeat(rng: random.Random, text: str) -> str:
    """The same question asked again in other words (a near-duplicate, not the same hash)."""
    kind = rng.randrange(3)
    if kind == 0:
        return "Quick question: " + text[0].lower() + text[1:]
    if kind == 1:
        return text.rstrip("?.") + " please?"
    return text.replace("our", "my", 1) if "our" in text else "So, " + text[0].lower() + text[1:]


EMAILS = ("finance@acme.example", "ops-team@globex.example", "jane.doe@initech.example")
CATEGORY_WEIGHTS = {
    "cost_optimisation": 30, "latency": 12, "model_selection": 15, "quality_evaluation": 8,
    "debugging": 12, "data_integration": 8, "account_billing": 8, "general": 7,
}  # fmt: skip

# Segment -> (share of people, daily chance of coming back at first, days for it to fall by
# e, the floor it falls to, sessions per active day, threads per chat visit)
SEGMENTS = {
    "power": (0.12, 0.85, 40.0, 0.55, 2.2, 2.0),
    "regular": (0.30, 0.60, 20.0, 0.25, 1.5, 1.4),
    "casual": (0.38, 0.35, 8.0, 0.06, 1.1, 1.0),
    "one_off": (0.20, 0.10, 2.0, 0.0, 1.0, 0.8),
}
VERSIONS = ((0.0, "1.3.2"), (0.4, "1.4.0"), (0.75, "1.4.1"))  # (share of the range, version)
HOURS = [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 9, 7, 9, 10, 10, 9, 7, 5, 4, 3, 2, 2, 1]  # UTC


@dataclasses.dataclass(frozen=True)
class Summary:
    """What a demo run sent and what the service said."""

    events: int
    accepted: int
    rejected: int
    rejections: dict[str, int]  # reason -> count
    requests: int
    retries: int
    seconds: float


def demo_events(
    *, users: int = 500, days: int = 30, seed: int = 1, now: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """The demo's events, person after person, each in the import's shape: `event_type`,
    `event_id`, `timestamp` (ISO 8601, UTC), `properties`, `context`. Only events at or before
    `now` (default: the current time) are yielded; the layout depends only on the arguments
    and `now`'s UTC day."""
    for person in _people(users, days, seed, now or datetime.now(UTC)):
        yield from person


def generate(
    *, users: int = 500, days: int = 30, seed: int = 1, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Every event of `demo_events` as a list (for tests and small runs)."""
    return list(demo_events(users=users, days=days, seed=seed, now=now))


def _people(users: int, days: int, seed: int, now: datetime) -> Iterator[list[dict[str, Any]]]:
    """Each person's events, one person after another."""
    first_day = now.astimezone(UTC).date() - timedelta(days=days - 1)
    for person in range(users):
        yield _Person(seed, users, days, person, first_day, now).events()


class _Person:
    def __init__(
        self, seed: int, users: int, days: int, index: int, first_day: date, now: datetime
    ) -> None:
        key = f"{seed}/{users}/{days}/{index}"
        self.rng = random.Random(key)
        self.key = key
        self.days = days
        self.first_day = first_day
        self.now = now
        self.user_id = f"demo-{seed}-{index:05d}"
        self.anonymous_id = str(uuid.uuid5(NAMESPACE, f"{key}/browser"))
        self.browser = self.rng.choice(BROWSERS)
        self.segment = self.rng.choices(list(SEGMENTS), [s[0] for s in SEGMENTS.values()])[0]
        self.environment = "staging" if self.rng.random() < 0.04 else "production"
        self.ordinal = 0
        self.out: list[tuple[datetime, dict[str, Any]]] = []
        self.asked: list[str] = []
        self.surveyed = self.nps_given = False
        # Later cohorts are bigger: the product grows.
        self.signup = int(days * math.sqrt(self.rng.random()) * 0.999)

    # --- the person's life -------------------------------------------------------------

    def events(self) -> list[dict[str, Any]]:
        _, start, tau, floor, sessions, _ = SEGMENTS[self.segment]
        active_days = 0
        for day in range(self.signup, self.days):
            age = day - self.signup
            chance = 1.0 if age == 0 else floor + (start - floor) * math.exp(-age / tau)
            if self.rng.random() >= chance:
                continue
            active_days += 1
            count = max(1, round(self.rng.gauss(sessions, 0.6)))
            hours = sorted(self.rng.choices(range(24), HOURS, k=count))
            for n, hour in enumerate(hours):
                moment = datetime.combine(
                    self.first_day + timedelta(days=day), datetime.min.time(), UTC
                ) + timedelta(hours=hour, minutes=self.rng.randrange(60))
                self._session(moment, day, first=age == 0 and n == 0, active_days=active_days)
        return [event for at, event in self.out if at <= self.now]

    def _session(self, at: datetime, day: int, *, first: bool, active_days: int) -> None:
        self.session_id = str(uuid.uuid5(NAMESPACE, f"{self.key}/session/{self.ordinal}"))
        self.version = [v for share, v in VERSIONS if day >= share * self.days][-1]
        page = "/" if first else self.rng.choice(["/", "/", "/chat", "/dashboard"])
        self.referrer = "https://www.google.com/" if first else ""
        for _ in range(12):  # pages per session, at most
            at = self._page(page, at, day, active_days)
            nexts = PAGES[page][1]
            page = self.rng.choices(list(nexts), list(nexts.values()))[0]
            if page == "exit":
                break

    def _page(self, page: str, at: datetime, day: int, active_days: int) -> datetime:
        self.page = page
        slow = self.rng.random() < 0.06
        load = self.rng.lognormvariate(math.log(4200 if slow else 850), 0.35)
        failed = self.rng.random() < 0.015
        detail = {"error_details": "HTTP 502 from the app server"} if failed else {}
        self._emit(at, "performance_metric", metric_type="page_load",
                   duration_ms=round(load, 1), success=not failed, **detail)  # fmt: skip
        at += timedelta(milliseconds=load)
        if failed:
            self._error(at, "NetworkError", "page failed to load: 502 Bad Gateway", "high")
            return at + timedelta(seconds=5)
        if self.rng.random() < 0.02:
            self._error(at, "TypeError", "Cannot read properties of undefined (reading 'map')",
                        self.rng.choice(["low", "medium"]))  # fmt: skip
        if page == "/chat":
            threads = max(1, round(self.rng.gauss(SEGMENTS[self.segment][5], 0.5)))
            for _ in range(threads):
                at = self._thread(at)
        elif page in FEATURES:
            at = self._features(page, at)
        if active_days >= 2 and not self.surveyed and self.rng.random() < 0.15:
            at = self._survey(at)
        if active_days >= 3 and not self.nps_given and self.rng.random() < 0.2:
            at = self._nps(at)
        if self.rng.random() < 0.01:
            kind = self.rng.choice(["feature_request", "bug_report"])
            comment = self.rng.choice(
                ["Please add a Slack alert when spend passes a budget",
                 "Export to CSV would help our finance team",
                 "The cost chart does not load on Safari",
                 "Model comparison shows the wrong currency"]
            )  # fmt: skip
            self._emit(at, "feedback_submission", feedback_type=kind, comment=comment)
        return at + timedelta(seconds=self.rng.uniform(5, 90))

    def _features(self, page: str, at: datetime) -> datetime:
        if page == "/cost-explorer" or self.rng.random() < 0.6:
            feature = self.rng.choice(FEATURES[page])
            ok = self.rng.random() > 0.03
            extra = {} if ok else {"error_code": "E_TIMEOUT"}
            self._emit(at, "feature_usage", feature_name=feature, action="open", success=ok,
                       duration_ms=round(self.rng.uniform(50, 900), 1), **extra)  # fmt: skip
            at += timedelta(seconds=self.rng.uniform(10, 120))
            if feature == "cost_explorer" and ok and self.rng.random() < 0.35:
                self._emit(at, "feature_usage", feature_name="cost_explorer",
                           action="savings_identified", success=True,
                           duration_ms=round(self.rng.uniform(500, 4000), 1))  # fmt: skip
        return at

    # --- chat ----------------------------------------------------------------------------

    def _thread(self, at: datetime) -> datetime:
        thread_id = str(uuid.uuid5(NAMESPACE, f"{self.key}/thread/{self.ordinal}"))
        started = at
        self._emit(at, "thread_lifecycle", thread_id=thread_id, action="created", message_count=0)
        turns = min(8, 1 + int(self.rng.expovariate(1.0)))
        messages = 0
        for turn in range(turns):
            at += timedelta(seconds=self.rng.uniform(8, 60))
            text = self._follow_up() if turn else self._question()
            answered, at = self._exchange(at, thread_id, text, follow_up=turn > 0)
            messages += 2 if answered else 1
            if not answered:
                break
        ending = self.rng.random()
        seconds = round((at - started).total_seconds(), 1)
        if ending < 0.55:
            self._emit(at, "thread_lifecycle", thread_id=thread_id, action="completed",
                       message_count=messages, duration_seconds=seconds)  # fmt: skip
            if self.rng.random() < 0.2:
                score = self.rng.choices([5, 4, 3, 2, 1], [40, 35, 12, 8, 5])[0]
                self._emit(at, "feedback_submission", feedback_type="csat", score=score,
                           context_thread_id=thread_id)  # fmt: skip
        elif ending < 0.85:
            self._emit(at, "thread_lifecycle", thread_id=thread_id, action="abandoned",
                       message_count=messages, duration_seconds=seconds)  # fmt: skip
        return at + timedelta(seconds=self.rng.uniform(5, 30))

    def _question(self) -> str:
        if self.asked and self.rng.random() < 0.12:  # asks again, about the same
            return _near_repeat(self.rng, self.rng.choice(self.asked))
        if self.rng.random() < 0.1 + (0.1 if self.segment in ("power", "regular") else 0):
            text = self._fill(self.rng.choice(COMPLEX_PROMPTS))
        else:
            category = self.rng.choices(list(CATEGORY_WEIGHTS), list(CATEGORY_WEIGHTS.values()))[0]
            templates = PROMPTS[category]
            # Zipf-like: the first templates are asked by many people.
            weights = [1 / (k + 1) ** 1.2 for k in range(len(templates))]
            text = self._fill(self.rng.choices(templates, weights)[0])
        self.asked.append(text)
        return text

    def _follow_up(self) -> str:
        return self._fill(self.rng.choice(FOLLOW_UPS))

    def _fill(self, template: str) -> str:
        values = {name: self.rng.choice(options) for name, options in SLOTS.items()}
        values["model2"] = self.rng.choice([m for m in SLOTS["model"] if m != values["model"]])
        values["email"] = self.rng.choice(EMAILS)
        return template.format(**values)

    def _exchange(
        self, at: datetime, thread_id: str, text: str, *, follow_up: bool
    ) -> tuple[bool, datetime]:
        model = self.rng.choices(list(MODELS), [m[0] for m in MODELS.values()])[0]
        _, price_in, price_out, ms_per_token = MODELS[model]
        input_tokens = 60 + len(text) // 4 + self.rng.randrange(200, 1800)  # with the context
        message = str(uuid.uuid5(NAMESPACE, f"{self.key}/message/{self.ordinal}"))
        self._emit(at, "chat_interaction", thread_id=thread_id, message_id=message,
                   message_type="user_prompt", prompt_text=text, prompt_length=len(text),
                   is_follow_up=follow_up, model_used=model, input_tokens=input_tokens,
                   tokens_consumed=input_tokens)  # fmt: skip
        if self.rng.random() < 0.03:  # no answer: the request failed
            at += timedelta(seconds=self.rng.uniform(10, 30))
            self._error(at, "APIError", f"{model} request failed: 503 upstream unavailable",
                        "high")  # fmt: skip
            return False, at
        output_tokens = int(self.rng.lognormvariate(math.log(350), 0.6))
        response_ms = round(
            self.rng.lognormvariate(math.log(400 + output_tokens * ms_per_token), 0.3), 1
        )
        at += timedelta(milliseconds=response_ms)
        cents = (input_tokens * price_in + output_tokens * price_out) / 10_000
        self._emit(at, "chat_interaction", thread_id=thread_id,
                   message_id=str(uuid.uuid5(NAMESPACE, f"{self.key}/message/{self.ordinal}")),
                   message_type="ai_response", prompt_length=0, is_follow_up=follow_up,
                   response_length=output_tokens * 4, response_time_ms=response_ms,
                   model_used=model, tokens_consumed=output_tokens, output_tokens=output_tokens,
                   cost_cents=round(cents, 4))  # fmt: skip
        return True, at

    # --- feedback, surveys, errors -----------------------------------------------------

    def _survey(self, at: datetime) -> datetime:
        self.surveyed = True
        survey = "ai-spend-2026"
        last_month = round(self.rng.lognormvariate(math.log(1800), 0.9), -1)
        growth = self.rng.choice([1.0, 1.2, 1.5, 2.0, 3.0])
        self._emit(at, "survey_response", survey_id=survey, question_id="monthly_spend",
                   question_type="spending", response_scale=self.rng.randint(3, 10),
                   ai_spend_last_month=last_month,
                   ai_spend_next_quarter=round(last_month * 3 * growth, -1))  # fmt: skip
        self._emit(
            at + timedelta(seconds=20),
            "survey_response",
            survey_id=survey,
            question_id="pain",
            question_type="pain_perception",
            response_scale=self.rng.choices(range(1, 11), [1, 1, 2, 3, 4, 5, 6, 5, 3, 2])[0],
        )
        if self.rng.random() < 0.6:
            wish = self.rng.choice(
                ["Tell me before the bill surprises me",
                 "Pick the cheapest model that is good enough automatically",
                 "One dashboard for every provider's spend",
                 "Cache repeated questions for free"]
            )  # fmt: skip
            self._emit(at + timedelta(seconds=45), "survey_response", survey_id=survey,
                       question_id="magic_wand", question_type="magic_wand",
                       response_value=wish)  # fmt: skip
        return at + timedelta(seconds=60)

    def _nps(self, at: datetime) -> datetime:
        self.nps_given = True
        weights = {
            "power": [0, 0, 0, 1, 1, 2, 3, 8, 14, 30, 41],
            "regular": [1, 1, 1, 2, 3, 5, 7, 18, 22, 22, 18],
            "casual": [3, 2, 3, 5, 6, 9, 12, 20, 18, 12, 10],
            "one_off": [8, 6, 7, 9, 10, 12, 12, 14, 10, 7, 5],
        }[self.segment]
        score = self.rng.choices(range(11), weights)[0]
        comment = {} if self.rng.random() < 0.5 else {"comment": "Saves us a lot of money"}
        self._emit(at, "feedback_submission", feedback_type="nps", score=score, **comment)
        return at + timedelta(seconds=30)

    def _error(self, at: datetime, error_type: str, message: str, impact: str) -> None:
        self._emit(at, "error_tracking", error_type=error_type, error_message=message,
                   user_impact=impact, stack_trace="at app.js:1:1")  # fmt: skip

    def _emit(self, at: datetime, event_type: str, **properties: Any) -> None:
        self.ordinal += 1
        self.out.append(
            (
                at,
                {
                    "event_type": event_type,
                    "event_id": str(uuid.uuid5(NAMESPACE, f"{self.key}/{self.ordinal}")),
                    "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "properties": properties,
                    "context": {
                        "user_id": self.user_id,
                        "anonymous_id": self.anonymous_id,
                        "session_id": self.session_id,
                        "page_path": self.page,
                        "page_title": PAGES[self.page][0],
                        "referrer": self.referrer,
                        "gtm_container_id": "GTM-DEMO01",
                        "environment": self.environment,
                        "app_version": self.version,
                        "user_agent": self.browser,
                    },
                },
            )
        )


# --- sending -------------------------------------------------------------------------------


class DemoError(Exception):
    """The service could not be reached or kept refusing: the message says what happened."""


def run(
    url: str,
    *,
    users: int = 500,
    days: int = 30,
    seed: int = 1,
    timeout: float = 300.0,
    now: datetime | None = None,
    progress: TextIO | None = sys.stderr,
    api_key: str | None = None,
    post: Callable[[str, bytes], tuple[int, dict[str, str], bytes]] | None = None,
) -> Summary:
    """Send the demo's events to the service at `url` through its import, in batches of the
    import's size, retrying a batch on 429/503 (after Retry-After) and on connection errors.

    The import is admin-only: `api_key` (an admin key, or an admin token of the auth service)
    goes in `Authorization: Bearer`. `now` (default: the current time) as for `demo_events`.
    Returns what the service accepted and rejected (by reason). Raises DemoError when a batch
    is refused (401/403: the message says which credential is needed), or still refused
    after MAX_ATTEMPTS or `timeout` seconds; batches sent before stay stored, and a re-run
    sends them again harmlessly.
    """
    send = post or functools.partial(_post, api_key=api_key)
    endpoint = url.rstrip("/") + IMPORT_PATH
    started = time.monotonic()
    batch: list[dict[str, Any]] = []
    totals = {"events": 0, "accepted": 0, "requests": 0, "retries": 0}
    rejections: dict[str, int] = {}

    def flush() -> None:
        body = orjson.dumps({"events": batch})
        reply = _send_batch(send, endpoint, body, started + timeout, totals)
        totals["events"] += len(batch)
        totals["accepted"] += int(reply["accepted"])
        for rejected in reply["rejected"]:
            rejections[rejected["reason"]] = rejections.get(rejected["reason"], 0) + 1
        batch.clear()

    bar = Progress(progress)

    def show(done: int, events: int, *, done_all: bool = False) -> None:
        text = f"{done:,}/{users:,} people, {events:,} events, {time.monotonic() - started:.1f} s"
        bar.show(done / users, text, done_all=done_all)

    for done, events in enumerate(_people(users, days, seed, now or datetime.now(UTC)), 1):
        for event in events:
            batch.append(event)
            if len(batch) == BATCH_EVENTS:
                flush()
        show(done, totals["events"] + len(batch))
    if batch:
        flush()
    show(users, totals["events"], done_all=True)
    return Summary(
        events=totals["events"],
        accepted=totals["accepted"],
        rejected=sum(rejections.values()),
        rejections=rejections,
        requests=totals["requests"],
        retries=totals["retries"],
        seconds=time.monotonic() - started,
    )


def _send_batch(
    send: Callable[[str, bytes], tuple[int, dict[str, str], bytes]],
    endpoint: str,
    body: bytes,
    deadline: float,
    totals: dict[str, int],
) -> dict[str, Any]:
    problem = ""
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            totals["retries"] += 1
        totals["requests"] += 1
        wait = min(2.0**attempt, 30.0)
        try:
            status, headers, content = send(endpoint, body)
        except OSError as exc:  # refused, reset, timed out: the service may be restarting
            problem = f"cannot reach {endpoint}: {exc}"
        else:
            if status == 202:
                reply: dict[str, Any] = orjson.loads(content)
                return reply
            problem = f"{endpoint} answered {status}: {content[:300].decode(errors='replace')}"
            if status in (401, 403):
                raise DemoError(f"{problem}\n{NEEDS_ADMIN}")
            if status not in (429, 503):
                raise DemoError(problem)
            retry_after = headers.get("retry-after", "")
            wait = float(retry_after) if retry_after.isdigit() else wait
        if time.monotonic() + wait > deadline:
            raise DemoError(f"out of time; last: {problem}")
        time.sleep(wait)
    raise DemoError(f"gave up after {MAX_ATTEMPTS} attempts; last: {problem}")


def _post(
    endpoint: str, body: bytes, *, api_key: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """POST `body` as JSON, with `api_key` as a bearer credential when given; (status,
    lower-cased headers, body) for any HTTP status."""
    headers = {"content-type": "application/json", "user-agent": "netra-analytics-demo"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(  # noqa: S310 (the URL is the operator's own service)
        endpoint, data=body, method="POST", headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:  # noqa: S310
            return response.status, _lower(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, _lower(exc.headers.items()), exc.read()


def _lower(items: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in items}


def wait_stored(url: str, timeout: float) -> float | None:
    """Wait until the service's spool is empty (every accepted event is in ClickHouse); the
    seconds it took, or None when `timeout` passed first. Prompt analysis follows shortly."""
    started = time.monotonic()
    ready = url.rstrip("/") + "/health/ready"
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(ready, timeout=10) as response:  # noqa: S310
                checks = orjson.loads(response.read())["checks"]
        except urllib.error.HTTPError as exc:  # 503 while the store catches up: still a body
            checks = orjson.loads(exc.read()).get("checks", {})
        except (OSError, ValueError):
            checks = {}
        if checks.get("spool", {}).get("backlog_bytes") == 0 and "writer" in checks:
            return time.monotonic() - started
        time.sleep(0.5)
    return None
