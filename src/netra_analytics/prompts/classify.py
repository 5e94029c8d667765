"""Prompt category and intent, from a model trained at start-up on labelled prompts that ship
with the package (`prompts/data/labelled_prompts.jsonl`); nothing is downloaded.

The model is scikit-learn's TF-IDF over word unigrams and bigrams plus character n-grams (which
carry model names, error codes and misspellings), with a logistic regression per label set.
Training on the ~330 examples takes well under a second. `evaluate()` measures accuracy on a
held-out split; `bench/prompt_bench.py` reports it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

CATEGORIES = (
    "cost_optimisation",
    "latency",
    "model_selection",
    "quality_evaluation",
    "debugging",
    "data_integration",
    "account_billing",
    "general",
)
INTENTS = ("question", "instruction", "comparison", "troubleshooting", "planning")


def load_labelled() -> list[dict[str, str]]:
    text = (
        resources.files("netra_analytics.prompts") / "data" / "labelled_prompts.jsonl"
    ).read_text()
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    for row in rows:
        if row["category"] not in CATEGORIES or row["intent"] not in INTENTS:
            raise ValueError(f"unknown label in {row}")
    return rows


def _pipeline() -> Pipeline:
    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)),
        ]
    )
    return Pipeline([("features", features), ("model", LogisticRegression(C=20, max_iter=2000))])


class PromptClassifier:
    def __init__(self, category: Pipeline, intent: Pipeline) -> None:
        self._category = category
        self._intent = intent

    @classmethod
    def train(cls, rows: Sequence[dict[str, str]]) -> PromptClassifier:
        texts = [row["text"] for row in rows]
        category = _pipeline().fit(texts, [row["category"] for row in rows])
        intent = _pipeline().fit(texts, [row["intent"] for row in rows])
        return cls(category, intent)

    def predict(self, texts: Sequence[str]) -> list[tuple[str, str]]:
        """(category, intent) for each text; batches are much faster than single calls."""
        if not texts:
            return []
        categories: Any = self._category.predict(list(texts))
        intents: Any = self._intent.predict(list(texts))
        return [(str(c), str(i)) for c, i in zip(categories, intents, strict=True)]


@cache
def default_classifier() -> PromptClassifier:
    return PromptClassifier.train(load_labelled())


def evaluate(
    rows: Sequence[dict[str, str]], *, seed: int = 7, test_share: float = 0.25
) -> dict[str, float]:
    """Accuracy on a held-out split, stratified by category (the split is seeded)."""
    rng = random.Random(seed)
    train: list[dict[str, str]] = []
    test: list[dict[str, str]] = []
    for category in CATEGORIES:
        group = [row for row in rows if row["category"] == category]
        rng.shuffle(group)
        cut = round(len(group) * test_share)
        test.extend(group[:cut])
        train.extend(group[cut:])
    model = PromptClassifier.train(train)
    predicted = model.predict([row["text"] for row in test])
    return {
        "train": len(train),
        "test": len(test),
        "category_accuracy": sum(
            p[0] == r["category"] for p, r in zip(predicted, test, strict=True)
        )
        / len(test),
        "intent_accuracy": sum(p[1] == r["intent"] for p, r in zip(predicted, test, strict=True))
        / len(test),
    }
