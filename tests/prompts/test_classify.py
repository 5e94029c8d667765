"""The prompt classifier trains offline from the packaged labelled prompts.

Its held-out accuracy is measured here against the trivial baseline only; the issue's target
(0.85) is not met yet with this data (see bench/README.md), so no test pretends it is.
"""

from __future__ import annotations

from collections import Counter

from netra_analytics.prompts.classify import CATEGORIES, INTENTS, evaluate, load_labelled


def test_labelled_prompts_cover_every_label() -> None:
    rows = load_labelled()
    assert len(rows) >= 300
    assert set(Counter(r["category"] for r in rows)) == set(CATEGORIES)
    assert set(Counter(r["intent"] for r in rows)) == set(INTENTS)
    assert len({r["text"] for r in rows}) == len(rows)


def test_held_out_accuracy_is_far_above_the_majority_baseline() -> None:
    rows = load_labelled()
    score = evaluate(rows, seed=7)
    majority_category = max(Counter(r["category"] for r in rows).values()) / len(rows)
    majority_intent = max(Counter(r["intent"] for r in rows).values()) / len(rows)
    assert score["category_accuracy"] >= majority_category + 0.4
    assert score["intent_accuracy"] >= majority_intent + 0.2
