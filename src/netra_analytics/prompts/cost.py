"""What a prompt and its answer cost, from token counts and a dated price table.

Prices live in `prompts/data/model_prices.json` (or the file `ANALYTICS_MODEL_PRICES` names):
per model, a list of prices per million tokens, each valid from its date. Events may report
`input_tokens`, `output_tokens` and `cached_tokens`; when they report only `tokens_consumed`,
a user prompt's tokens are priced as input and an AI response's as output.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class Price:
    valid_from: date
    input: float  # USD per million tokens
    output: float
    cached_input: float | None = None


@dataclasses.dataclass(frozen=True)
class Tokens:
    input: int = 0
    output: int = 0
    cached_input: int = 0


class PriceTable:
    def __init__(self, prices: dict[str, list[Price]]) -> None:
        self._prices = {
            model.lower(): sorted(p, key=lambda x: x.valid_from) for model, p in prices.items()
        }
        # Longest names first, so gpt-4o-mini wins over gpt-4o for "gpt-4o-mini-2024-07-18".
        self._names = sorted(self._prices, key=len, reverse=True)

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        if path is None:
            text = (
                resources.files("netra_analytics.prompts") / "data" / "model_prices.json"
            ).read_text()
        else:
            text = path.read_text()
        data: dict[str, Any] = json.loads(text)
        return cls(
            {
                model: [
                    Price(
                        date.fromisoformat(p["from"]),
                        float(p["input"]),
                        float(p["output"]),
                        float(p["cached_input"]) if "cached_input" in p else None,
                    )
                    for p in prices
                ]
                for model, prices in data["models"].items()
            }
        )

    def price(self, model: str, on: date) -> Price | None:
        name = model.lower()
        for known in self._names:
            if name.startswith(known):
                valid = [p for p in self._prices[known] if p.valid_from <= on]
                return valid[-1] if valid else None
        return None

    def cost_cents(self, model: str, on: date, tokens: Tokens) -> float | None:
        """Cost in US cents, or None when the model (or a price on that date) is unknown."""
        price = self.price(model, on)
        if price is None:
            return None
        cached_rate = price.cached_input if price.cached_input is not None else price.input
        usd = (
            tokens.input * price.input
            + tokens.output * price.output
            + tokens.cached_input * cached_rate
        ) / 1_000_000
        return usd * 100
