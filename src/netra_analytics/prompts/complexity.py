"""Prompt complexity in [0, 1], from features anyone can check by reading the prompt.

    score = 0.30·length + 0.20·parts + 0.25·technical + 0.15·constraints + 0.10·structure

- length: words / 60, capped at 1 (a 60-word prompt is long for a chat question);
- parts: questions and clauses beyond the first (`?`, `;`, "and also", list items), / 3;
- technical: words from the platform's technical vocabulary (models, latency, tokens,
  embeddings, SQL ...), / 4, capped;
- constraints: words that bound the answer ("without", "under", "must", "compare", numbers
  and percentages), / 3;
- structure: code, JSON, SQL or a multi-line list in the prompt.

The weights are a judgement, not a fit; they keep a greeting near 0, a one-line factual
question near 0.2 and a multi-part, constrained technical request above 0.6 (the journeys
report's "complex query" threshold).
"""

from __future__ import annotations

import re

TECHNICAL = frozenset(
    [
        "api",
        "latency",
        "throughput",
        "token",
        "tokens",
        "embedding",
        "embeddings",
        "vector",
        "retrieval",
        "rag",
        "model",
        "models",
        "llm",
        "gpt",
        "claude",
        "llama",
        "mistral",
        "gemini",
        "fine-tune",
        "finetune",
        "fine-tuning",
        "prompt",
        "prompts",
        "context",
        "window",
        "inference",
        "gpu",
        "cpu",
        "batch",
        "batching",
        "streaming",
        "cache",
        "caching",
        "quantization",
        "quantisation",
        "p50",
        "p95",
        "p99",
        "sql",
        "query",
        "schema",
        "index",
        "clickhouse",
        "postgres",
        "kafka",
        "webhook",
        "sdk",
        "json",
        "yaml",
        "endpoint",
        "rate",
        "limit",
        "timeout",
        "cost",
        "costs",
        "spend",
        "budget",
        "pricing",
        "eval",
        "evaluation",
        "benchmark",
        "hallucination",
        "accuracy",
        "precision",
        "recall",
        "temperature",
        "top_p",
        "function",
        "tool",
        "agent",
        "pipeline",
        "deploy",
        "deployment",
        "kubernetes",
        "docker",
        "region",
        "routing",
        "fallback",
        "bill",
        "billing",
        "openai",
        "anthropic",
    ]
)
CONSTRAINTS = frozenset(
    [
        "without",
        "under",
        "below",
        "above",
        "within",
        "must",
        "only",
        "exactly",
        "least",
        "most",
        "compare",
        "versus",
        "vs",
        "between",
        "limit",
        "budget",
        "deadline",
        "maximum",
        "minimum",
        "instead",
        "except",
        "unless",
        "while",
    ]
)
_WORD = re.compile(r"[a-z0-9_\-]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?%?")
_PARTS = re.compile(r"\?|;|\band also\b|\bthen\b|^\s*(?:[-*•]|\d+[.)])\s", re.M)
_STRUCTURE = re.compile(r"```|\{.*:.*\}|\bselect\b.+\bfrom\b|\n\s*(?:[-*•]|\d+[.)])\s", re.I | re.S)


def complexity(text: str) -> float:
    lowered = text.lower()
    words = _WORD.findall(lowered)
    if not words:
        return 0.0
    length = min(1.0, len(words) / 60)
    parts = min(1.0, max(0, len(_PARTS.findall(text)) - 1) / 3)
    technical = min(1.0, sum(w in TECHNICAL for w in words) / 4)
    constraint_hits = sum(w in CONSTRAINTS for w in words) + len(_NUMBER.findall(lowered))
    constraints = min(1.0, constraint_hits / 3)
    structure = 1.0 if _STRUCTURE.search(text) else 0.0
    score = 0.30 * length + 0.20 * parts + 0.25 * technical + 0.15 * constraints + 0.10 * structure
    return round(min(1.0, score), 4)
