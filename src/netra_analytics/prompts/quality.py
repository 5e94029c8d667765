"""Response quality and relevance in [0, 1], from what users did after the answer.

No model judges the text: the scores are built from observed signals, so they can be
explained and they change as signals arrive.

quality starts at 0.5 and moves with
- an answer arrived: +0.10; none (yet): capped at 0.3 until one does;
- answer time: under 3 s +0.10, over 15 s −0.15;
- feedback linked to the thread (`context_thread_id`): NPS score s adds (s − 5) / 5 × 0.25,
  CSAT score s adds (s − 3) / 2 × 0.25, a bug report −0.20;
- the thread was completed +0.15, abandoned −0.20;
- the user asked the same thing again in the thread (a rephrase) −0.25;
- an error was reported in the session right after the answer −0.15.

relevance starts at 0.6 and moves with
- a rephrase −0.35 (the clearest sign the answer missed the question);
- a genuine follow-up question +0.10 (the user built on the answer);
- feedback: positive (NPS ≥ 9, CSAT ≥ 4) +0.20, negative (NPS ≤ 6, CSAT ≤ 2) −0.20;
- the thread was abandoned −0.15; an empty answer → 0.1.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Signals:
    responded: bool = False
    response_time_ms: float | None = None
    response_length: int | None = None
    rephrased: bool = False
    followed_up: bool = False
    completed: bool = False
    abandoned: bool = False
    errors_after: int = 0
    feedback: list[tuple[str, int | None]] = dataclasses.field(default_factory=list)


def _clip(value: float) -> float:
    return round(min(1.0, max(0.0, value)), 4)


def scores(signals: Signals) -> tuple[float, float]:
    """(response_quality_score, response_relevance_score)."""
    quality, relevance = 0.5, 0.6
    if signals.responded:
        quality += 0.10
        if signals.response_time_ms is not None:
            if signals.response_time_ms < 3000:
                quality += 0.10
            elif signals.response_time_ms > 15000:
                quality -= 0.15
    for kind, score in signals.feedback:
        if kind == "bug_report":
            quality -= 0.20
        elif score is not None and kind == "nps":
            quality += (score - 5) / 5 * 0.25
            relevance += 0.20 if score >= 9 else (-0.20 if score <= 6 else 0.0)
        elif score is not None and kind == "csat":
            quality += (score - 3) / 2 * 0.25
            relevance += 0.20 if score >= 4 else (-0.20 if score <= 2 else 0.0)
    if signals.completed:
        quality += 0.15
    if signals.abandoned:
        quality -= 0.20
        relevance -= 0.15
    if signals.rephrased:
        quality -= 0.25
        relevance -= 0.35
    elif signals.followed_up:
        relevance += 0.10
    quality -= 0.15 * min(signals.errors_after, 2)
    if not signals.responded:
        quality = min(quality, 0.3)
    if signals.responded and signals.response_length == 0:
        relevance = 0.1
    return _clip(quality), _clip(relevance)
