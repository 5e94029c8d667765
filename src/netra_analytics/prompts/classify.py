"""Prompt category and intent, from a model trained at start-up on labelled prompts that ship
with the package (`prompts/data/labelled_prompts.jsonl`); nothing is downloaded.

The model is scikit-learn's TF-IDF over word unigrams and bigrams plus character n-grams (which
carry model names, error codes and misspellings), with a linear SVM per label set. Before
vectorising, each prompt gets cue tokens: its first word (how, why, compare, plan, show ...),
whether it asks a question, and one token per hit in a small per-topic vocabulary (`CUES`): a
few hundred examples cannot teach that "invoice" and "seat" are about billing, so that
knowledge is written down. Training takes about a second. `evaluate()` measures accuracy on a
held-out split; `bench/prompt_bench.py` reports it, with a separate held-out file written
after the cues were fixed.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from sklearn import config_context
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

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


CUES = {
    "cost": "cost costs cheap cheaper cheapest spend spending bill budget save saving savings "
    "price pricing expensive dollars money token tokens cache caching discount",
    "latency": "latency slow slower slowness fast faster quick quicker speed timeout timeouts "
    "seconds ms p50 p95 p99 delay stall stalls lag waiting wait freeze freezes crawl snappier",
    "model": "model models gpt claude llama mistral gemini haiku sonnet opus o1 fine tuned "
    "embedding weights which best choose pick recommend",
    "quality": "quality accuracy accurate evaluate evaluation eval metric metrics judge rubric "
    "hallucination hallucinations grounded relevance relevant score rating rated feedback "
    "review graders labelling thumbs correct wrong ratings star satisfaction",
    "debugging": "error errors exception fails failing failed crash crashes crashed bug broken "
    "401 400 413 429 500 503 stack trace debug null cors ssl invalid malformed logs raises "
    "throws uncaught undefined keyerror typeerror reproduce",
    "data": "import export sync connect connector integration integrate database postgres "
    "salesforce zendesk hubspot kafka bigquery snowflake s3 csv pdf excel ingest pipeline "
    "webhook schema index vector events source upload",
    "account": "account invoice invoices card payment plan seat seats subscription upgrade "
    "downgrade cancel refund login password sso workspace vat receipt renew admin owner "
    "billed charged charge trial editors viewers members address",
    "general": "hello hi thanks who write translate haiku limerick poem summarise newsletter tips",
}
_CUE_WORDS = {word: name for name, words in CUES.items() for word in words.split()}
_WORD = re.compile(r"[a-z0-9']+")


def with_cues(text: str) -> str:
    words = _WORD.findall(text.lower())
    cues = [
        f"cue_first_{words[0]}" if words else "cue_empty",
        "cue_q" if "?" in text else "cue_noq",
    ]
    cues += [f"cue_topic_{_CUE_WORDS[w]}" for w in words if w in _CUE_WORDS]
    return f"{text} {' '.join(cues)}"


def _features() -> FeatureUnion:
    return FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)),
        ]
    )


class PromptClassifier:
    """One TF-IDF vectoriser, fitted on the labelled texts, feeds both models: the two label
    sets are learnt from the same texts, so their vectorisers would be the same, and
    vectorising is most of a prediction's time (character n-grams)."""

    def __init__(self, features: FeatureUnion, category: LinearSVC, intent: LinearSVC) -> None:
        self._features = features
        self._category = category
        self._intent = intent

    @classmethod
    def train(cls, rows: Sequence[dict[str, str]]) -> PromptClassifier:
        texts = [with_cues(row["text"]) for row in rows]
        features = _features()
        matrix = features.fit_transform(texts)
        category = LinearSVC(C=1.0).fit(matrix, [row["category"] for row in rows])
        intent = LinearSVC(C=1.0).fit(matrix, [row["intent"] for row in rows])
        return cls(features, category, intent)

    def predict(self, texts: Sequence[str]) -> list[tuple[str, str]]:
        """(category, intent) for each text; batches are much faster than single calls."""
        if not texts:
            return []
        # scikit-learn's input checks cost more than a few texts' prediction; ours are str.
        with config_context(assume_finite=True, skip_parameter_validation=True):
            matrix = self._features.transform([with_cues(text) for text in texts])
            categories: Any = self._category.predict(matrix)
            intents: Any = self._intent.predict(matrix)
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
