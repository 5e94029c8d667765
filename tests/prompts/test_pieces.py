"""Complexity, cost and quality scores: pure functions with documented formulas."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from netra_analytics.prompts.complexity import complexity
from netra_analytics.prompts.cost import PriceTable, Tokens
from netra_analytics.prompts.quality import Signals, scores


def test_complexity_orders_prompts_as_a_reader_would() -> None:
    greeting = complexity("hi there")
    simple = complexity("What is a token?")
    complex_ = complexity(
        "Compare GPT-4o and Claude 3.5 Sonnet for code review under a budget of 2000 dollars per "
        "month; we need p95 latency below 2 s and must keep accuracy above 90%. Also, should we "
        "fine-tune a smaller model instead? Then plan the migration of our RAG pipeline."
    )
    assert greeting < 0.05 < simple < 0.3 < 0.6 < complex_ <= 1.0
    assert complexity("") == 0.0


@pytest.mark.parametrize(
    ("model", "on", "tokens", "cents"),
    [
        (
            "gpt-4o-mini-2024-07-18",
            date(2025, 1, 1),
            Tokens(1000, 500),
            (1000 * 0.15 + 500 * 0.6) / 1e4,
        ),
        ("gpt-4o", date(2024, 6, 1), Tokens(1000, 500), (1000 * 5 + 500 * 15) / 1e4),
        (
            "gpt-4o-2024-08-06",
            date(2024, 11, 1),
            Tokens(1000, 500, 2000),
            (1000 * 2.5 + 500 * 10 + 2000 * 1.25) / 1e4,
        ),
        (
            "claude-3-5-sonnet-20241022",
            date(2025, 2, 1),
            Tokens(2000, 1000, 4000),
            (2000 * 3 + 1000 * 15 + 4000 * 0.3) / 1e4,
        ),
        ("claude-3-opus-20240229", date(2024, 5, 1), Tokens(100, 100), (100 * 15 + 100 * 75) / 1e4),
        ("gpt-4-turbo", date(2024, 5, 1), Tokens(0, 1_000_000), 3000.0),
    ],
)
def test_known_models_cost(model: str, on: date, tokens: Tokens, cents: float) -> None:
    assert PriceTable.load().cost_cents(model, on, tokens) == pytest.approx(cents)


def test_unknown_model_or_date_has_no_price() -> None:
    table = PriceTable.load()
    assert table.cost_cents("my-own-model", date(2025, 1, 1), Tokens(10, 10)) is None
    assert table.cost_cents("gpt-4o", date(2023, 1, 1), Tokens(10, 10)) is None


def test_a_users_own_price_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"house-llm": [
        {"from": "2025-01-01", "input": 1.0, "output": 2.0},
        {"from": "2025-06-01", "input": 0.5, "output": 1.0}]}}))  # fmt: skip
    table = PriceTable.load(path)
    assert table.cost_cents(
        "house-llm-v2", date(2025, 3, 1), Tokens(1_000_000, 0)
    ) == pytest.approx(100.0)
    assert table.cost_cents(
        "house-llm-v2", date(2025, 7, 1), Tokens(1_000_000, 0)
    ) == pytest.approx(50.0)


def test_quality_and_relevance_follow_the_documented_signals() -> None:
    assert scores(Signals()) == (0.3, 0.6)  # no answer yet
    fast_liked = Signals(
        responded=True,
        response_time_ms=1200,
        feedback=[("nps", 9)],
        completed=True,
        followed_up=True,
    )
    assert scores(fast_liked) == (1.0, 0.9)
    rephrased = Signals(responded=True, response_time_ms=1200, rephrased=True, followed_up=True)
    assert scores(rephrased) == (0.45, 0.25)
    slow_abandoned = Signals(
        responded=True, response_time_ms=20_000, abandoned=True, errors_after=1
    )
    assert scores(slow_abandoned) == (0.1, 0.45)
    assert scores(Signals(responded=True, response_length=0))[1] == 0.1
