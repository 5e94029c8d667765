"""Measuring the sanitiser against a labelled corpus (used by the tests and `bench/`).

Each corpus line is `{"text": ..., "pii": [{"value": ..., "type": ...}]}`; lines without pii
are look-alikes that must come through unchanged. A labelled value counts as found when it no
longer appears in the output; every placeholder beyond the values found is a false positive.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")


@dataclasses.dataclass
class SanitiserScore:
    lines: int = 0
    pii_values: int = 0
    found: int = 0
    typed_right: int = 0
    false_positives: int = 0
    misses: list[str] = dataclasses.field(default_factory=list)
    false_alarms: list[str] = dataclasses.field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.pii_values if self.pii_values else 1.0

    @property
    def precision(self) -> float:
        flagged = self.found + self.false_positives
        return self.found / flagged if flagged else 1.0

    @property
    def type_accuracy(self) -> float:
        return self.typed_right / self.found if self.found else 1.0


def load_corpus(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def score_sanitiser(
    sanitise: Callable[[str], str], corpus: Iterable[dict[str, Any]]
) -> SanitiserScore:
    score = SanitiserScore()
    for line in corpus:
        score.lines += 1
        out = sanitise(line["text"])
        placeholders = PLACEHOLDER.findall(out)
        found = 0
        for item in line["pii"]:
            score.pii_values += 1
            if item["value"] in out:
                score.misses.append(f"{item['type']}: {line['text']!r} -> {out!r}")
                continue
            found += 1
            if f"[{item['type']}]" in placeholders:
                score.typed_right += 1
        score.found += found
        extra = max(0, len(placeholders) - found)
        score.false_positives += extra
        if extra:
            score.false_alarms.append(f"{line['text']!r} -> {out!r}")
    return score
