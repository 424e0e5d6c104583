"""Model prices (USD per million tokens) and the cost of one model call.

The table holds list prices of the models the built-in agents default to and their
common siblings. Prices change: override or extend the table with ``--agent-prices``
(ini ``crmbench_agent_prices``), a JSON file path or inline JSON::

    {"my-model": {"input": 0.5, "output": 1.5, "cache_read": 0.05, "cache_write": 0.6}}

``cache_read``/``cache_write`` default to the input price when omitted. Model names
match exactly, else by the longest table key that prefixes them
(``claude-sonnet-4-5-20250929`` → ``claude-sonnet-4-5``). A model that is not in the
table costs 0 (tokens are still recorded).

How the APIs count tokens, and so how cost is computed:

* Anthropic reports ``input_tokens`` *without* the cached part, plus
  ``cache_read_input_tokens`` and ``cache_creation_input_tokens``:
  cost = input·in + cache_read·cache_read + cache_write·cache_write + output·out.
* OpenAI reports ``prompt_tokens`` *including* ``cached_tokens``:
  cost = (prompt − cached)·in + cached·cache_read + completion·out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None

    @property
    def read(self) -> float:
        return self.input if self.cache_read is None else self.cache_read

    @property
    def write(self) -> float:
        return self.input if self.cache_write is None else self.cache_write


# List prices, USD per million tokens (input, output, cache read, cache write).
DEFAULT_PRICES: dict[str, Price] = {
    # Anthropic (cache write = 5-minute cache writes)
    "claude-sonnet-4-5": Price(3.00, 15.00, 0.30, 3.75),
    "claude-sonnet-4": Price(3.00, 15.00, 0.30, 3.75),
    "claude-3-7-sonnet": Price(3.00, 15.00, 0.30, 3.75),
    "claude-haiku-4-5": Price(1.00, 5.00, 0.10, 1.25),
    "claude-3-5-haiku": Price(0.80, 4.00, 0.08, 1.00),
    "claude-opus-4-1": Price(15.00, 75.00, 1.50, 18.75),
    "claude-opus-4": Price(15.00, 75.00, 1.50, 18.75),
    # OpenAI (caching is automatic; no separate write price)
    "gpt-4.1": Price(2.00, 8.00, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "gpt-4o": Price(2.50, 10.00, 1.25),
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
}


class PriceError(ValueError):
    """An ``--agent-prices`` value that cannot be used; the message says why."""


class PriceTable:
    """Prices by model name, with prefix matching."""

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self.prices: dict[str, Price] = dict(DEFAULT_PRICES if prices is None else prices)

    def lookup(self, model: str) -> Price | None:
        if model in self.prices:
            return self.prices[model]
        best = max((k for k in self.prices if model.startswith(k)), key=len, default=None)
        return None if best is None else self.prices[best]

    def with_overrides(self, overrides: Mapping[str, Price]) -> PriceTable:
        return PriceTable({**self.prices, **overrides})

    def cost(
        self,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        input_includes_cache: bool = False,
    ) -> float:
        """USD for one call; ``input_includes_cache`` for OpenAI-style prompt counts."""
        price = self.lookup(model)
        if price is None:
            return 0.0
        uncached = input_tokens
        if input_includes_cache:
            uncached = max(0, input_tokens - cache_read_tokens - cache_write_tokens)
        return (
            uncached * price.input
            + cache_read_tokens * price.read
            + cache_write_tokens * price.write
            + output_tokens * price.output
        ) / 1_000_000


def _price(model: str, raw: Any) -> Price:
    if not isinstance(raw, Mapping):
        raise PriceError(f"{model!r}: expected an object with input/output prices")
    unknown = set(raw) - {"input", "output", "cache_read", "cache_write"}
    if unknown:
        raise PriceError(f"{model!r}: unknown key(s) {', '.join(sorted(unknown))}")
    values: dict[str, float | None] = {}
    for key in ("input", "output", "cache_read", "cache_write"):
        value = raw.get(key)
        if value is None and key in ("input", "output"):
            raise PriceError(f"{model!r}: '{key}' (USD per million tokens) is required")
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise PriceError(f"{model!r}: '{key}' must be a number ≥ 0, not {value!r}")
            value = float(value)
        values[key] = value
    return Price(
        float(values["input"] or 0.0),
        float(values["output"] or 0.0),
        values["cache_read"],
        values["cache_write"],
    )


def parse_prices(spec: str | None) -> dict[str, Price]:
    """Overrides from ``--agent-prices``: inline JSON or the path of a JSON file."""
    if spec is None or not spec.strip():
        return {}
    text = spec.strip()
    if not text.startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise PriceError(f"no such file: {text} (give a JSON file or inline JSON)")
        text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PriceError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PriceError('expected an object {"model": {"input": .., "output": ..}}')
    return {str(model): _price(str(model), raw) for model, raw in data.items()}


def price_table(spec: str | None = None) -> PriceTable:
    """The default table with ``--agent-prices`` overrides applied."""
    return PriceTable().with_overrides(parse_prices(spec))
