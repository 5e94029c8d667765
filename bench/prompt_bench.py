"""Prompt intelligence: sanitiser precision/recall, classifier accuracy, near-duplicate
precision, and how many prompts per second the analysis keeps up with on one core.

    .venv/bin/python -m bench.prompt_bench

- sanitiser: the labelled corpora in tests/data (tuning set and held-out set);
- classifier: held-out accuracy over 5 seeded stratified splits (25 % held out), and on
  tests/data/prompt_holdout.jsonl, written after the model and its cues were fixed;
- near-duplicates: pairs built from the labelled prompts: a prompt and a variant of it (case,
  punctuation, a word added or dropped) are a positive pair, two different prompts a negative
  one; precision and recall of "the index returns it as similar";
- throughput: `PromptAnalyser.analyse` over spool records holding 20,000 user prompts (with
  their answers), one thread, after a warm-up; median of 3 runs.
"""

from __future__ import annotations

import json
import random
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.common import REPO, save_results
from netra_analytics.ingest.process import RequestInfo, process
from netra_analytics.ingest.writer import SpoolRecord
from netra_analytics.prompts.classify import default_classifier, evaluate, load_labelled
from netra_analytics.prompts.evaluation import load_corpus, score_sanitiser
from netra_analytics.prompts.normalise import prompt_hash
from netra_analytics.prompts.sanitise import sanitise
from netra_analytics.prompts.similarity import SimilarityIndex
from netra_analytics.prompts.worker import PromptAnalyser


def variant(text: str, rng: random.Random) -> str:
    words = text.rstrip("?.!").split()
    choice = rng.randrange(4)
    if choice == 0:
        return text.lower().rstrip("?")
    if choice == 1:
        return text.upper() + "!!"
    if choice == 2 and len(words) > 5:
        del words[rng.randrange(1, len(words))]
        return " ".join(words)
    return " ".join([*words, rng.choice(["please", "today", "now"])]) + "?"


def near_duplicates(rows: list[dict[str, str]]) -> dict[str, float]:
    rng = random.Random(3)
    index = SimilarityIndex()
    texts = [row["text"] for row in rows]
    for i, text in enumerate(texts):
        index.add(f"o{i}", "u", i, prompt_hash(text), text)
    true_pos = false_neg = false_pos = 0
    for i, text in enumerate(texts):
        probe = variant(text, rng)
        found = {other for other, _ in index.similar(f"p{i}", prompt_hash(probe), probe)}
        if f"o{i}" in found:
            true_pos += 1
        else:
            false_neg += 1
        false_pos += len(found - {f"o{i}"})
    return {
        "pairs": len(texts),
        "precision": true_pos / max(1, true_pos + false_pos),
        "recall": true_pos / len(texts),
    }


def records(n_prompts: int) -> list[tuple[int, SpoolRecord]]:
    rows = load_labelled()
    rng = random.Random(1)
    info = RequestInfo(received_at=datetime.now(UTC))
    out: list[tuple[int, SpoolRecord]] = []
    for offset, start in enumerate(range(0, n_prompts, 10), start=1):
        user = f"user-{rng.randrange(500)}"
        events: list[dict[str, Any]] = []
        for k in range(10):
            text = rng.choice(rows)["text"] + (
                f" #{rng.randrange(50)}" if rng.random() < 0.5 else ""
            )
            thread = f"t-{(start + k) // 3}"
            events.append(
                {
                    "event_type": "chat_interaction",
                    "properties": {
                        "thread_id": thread,
                        "message_id": uuid.uuid4().hex,
                        "message_type": "user_prompt",
                        "prompt_text": text,
                        "prompt_length": len(text),
                        "is_follow_up": k % 3 != 0,
                        "tokens_consumed": 40,
                        "model_used": "gpt-4o-mini",
                    },
                }
            )
            events.append({"event_type": "chat_interaction", "properties": {
                "thread_id": thread, "message_id": uuid.uuid4().hex, "message_type": "ai_response",
                "prompt_length": 0, "is_follow_up": False, "tokens_consumed": 300,
                "response_time_ms": 900.0, "response_length": 1200, "model_used": "gpt-4o-mini"}})  # fmt: skip
        batch = process(
            orjson.dumps(
                {"events": events, "context": {"user_id": user, "session_id": f"s-{user}"}}
            ),
            info,
        )
        out.append(
            (
                offset,
                SpoolRecord(
                    info.received_at.timestamp(),
                    [(e.event_id, user, e.row) for e in batch.accepted],
                    [],
                ),
            )
        )
    return out


def throughput(n_prompts: int = 20_000) -> dict[str, Any]:
    classifier = default_classifier()
    data = records(n_prompts)
    runs = []
    for _ in range(3):
        analyser = PromptAnalyser(classifier, SimilarityIndex())
        analyser.analyse(data[:20])  # warm-up
        analyser = PromptAnalyser(classifier, SimilarityIndex())
        started = time.perf_counter()
        for i in range(0, len(data), 20):
            analyser.analyse(data[i : i + 20])
        runs.append(n_prompts / (time.perf_counter() - started))
    return {"prompts": n_prompts, "prompts_per_s": statistics.median(runs), "runs": runs}


def main() -> int:
    data = REPO / "tests" / "data"
    tuning = score_sanitiser(sanitise, load_corpus(data / "sanitiser_corpus.jsonl"))
    holdout = score_sanitiser(sanitise, load_corpus(data / "sanitiser_holdout.jsonl"))
    labelled = load_labelled()
    splits = [evaluate(labelled, seed=seed) for seed in range(5)]
    fresh = [json.loads(line) for line in (data / "prompt_holdout.jsonl").read_text().splitlines()]
    predicted = default_classifier().predict([row["text"] for row in fresh])
    summary = {
        "sanitiser_tuning": {
            "lines": tuning.lines,
            "pii": tuning.pii_values,
            "recall": tuning.recall,
            "precision": tuning.precision,
        },
        "sanitiser_holdout": {
            "lines": holdout.lines,
            "pii": holdout.pii_values,
            "recall": holdout.recall,
            "precision": holdout.precision,
        },
        "classifier": {
            "examples": len(labelled),
            "category_accuracy": statistics.median(s["category_accuracy"] for s in splits),
            "intent_accuracy": statistics.median(s["intent_accuracy"] for s in splits),
            "splits": splits,
            "fresh_holdout": {
                "prompts": len(fresh),
                "category_accuracy": sum(
                    p[0] == r["category"] for p, r in zip(predicted, fresh, strict=True)
                )
                / len(fresh),
                "intent_accuracy": sum(
                    p[1] == r["intent"] for p, r in zip(predicted, fresh, strict=True)
                )
                / len(fresh),
            },
        },
        "near_duplicates": near_duplicates(labelled),
        "throughput": throughput(),
    }
    save_results("prompts", summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
