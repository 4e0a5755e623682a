"""Prices of model calls (pure).

Prices are US dollars per million tokens, as published by each provider; they change,
so the table is a value the user can extend or override with :meth:`CostTable.with_prices`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import attrs

from avl.errors import ConfigError

__all__ = ["DEFAULT_PRICES", "CostTable", "ModelPrice"]


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{attribute.name} must be a non-negative number, got {value!r}")


@attrs.frozen(kw_only=True)
class ModelPrice:
    """Price of one model, in USD per million tokens.

    Attributes:
        input_per_mtok: price of an uncached input token x 1e6.
        output_per_mtok: price of an output token x 1e6.
        cached_input_per_mtok: price of a cached input token x 1e6 (defaults to the
            input price when the provider has no discount).
    """

    input_per_mtok: float = attrs.field(validator=_non_negative)
    output_per_mtok: float = attrs.field(validator=_non_negative)
    cached_input_per_mtok: float | None = attrs.field(default=None)

    def cost_usd(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        """Cost of one call. ``input_tokens`` includes ``cached_tokens``."""
        cached = min(max(cached_tokens, 0), max(input_tokens, 0))
        cached_price = (
            self.input_per_mtok
            if self.cached_input_per_mtok is None
            else self.cached_input_per_mtok
        )
        return (
            (input_tokens - cached) * self.input_per_mtok
            + cached * cached_price
            + output_tokens * self.output_per_mtok
        ) / 1_000_000


def _p(i: float, o: float, c: float | None = None) -> ModelPrice:
    return ModelPrice(input_per_mtok=i, output_per_mtok=o, cached_input_per_mtok=c)


#: Default prices (USD per million tokens; list prices as published in 2025-2026).
DEFAULT_PRICES: Mapping[str, ModelPrice] = MappingProxyType(
    {
        "offline/*": _p(0.0, 0.0, 0.0),
        "openai/gpt-4o": _p(2.50, 10.00, 1.25),
        "openai/gpt-4o-mini": _p(0.15, 0.60, 0.075),
        "openai/gpt-4.1": _p(2.00, 8.00, 0.50),
        "openai/gpt-4.1-mini": _p(0.40, 1.60, 0.10),
        "openai/gpt-4.1-nano": _p(0.10, 0.40, 0.025),
        "openai/o4-mini": _p(1.10, 4.40, 0.275),
        "openai/text-embedding-3-small": _p(0.02, 0.0),
        "openai/text-embedding-3-large": _p(0.13, 0.0),
        "anthropic/claude-3-5-haiku": _p(0.80, 4.00, 0.08),
        "anthropic/claude-3-5-sonnet": _p(3.00, 15.00, 0.30),
        "anthropic/claude-3-7-sonnet": _p(3.00, 15.00, 0.30),
        "anthropic/claude-sonnet-4": _p(3.00, 15.00, 0.30),
        "anthropic/claude-opus-4": _p(15.00, 75.00, 1.50),
        "gemini/gemini-1.5-flash": _p(0.075, 0.30, 0.01875),
        "gemini/gemini-1.5-pro": _p(1.25, 5.00, 0.3125),
        "gemini/gemini-2.0-flash": _p(0.10, 0.40, 0.025),
        "gemini/gemini-2.5-flash": _p(0.30, 2.50, 0.075),
        "gemini/gemini-2.5-pro": _p(1.25, 10.00, 0.31),
    }
)


def _freeze(prices: Mapping[str, ModelPrice]) -> Mapping[str, ModelPrice]:
    for key, value in prices.items():
        if "/" not in key:
            raise ConfigError(f"cost table key {key!r} must be 'provider/model' or 'provider/*'")
        if not isinstance(value, ModelPrice):
            raise ConfigError(f"cost table value for {key!r} must be a ModelPrice")
    return MappingProxyType(dict(prices))


@attrs.frozen(kw_only=True)
class CostTable:
    """Model prices keyed by ``"provider/model"``.

    Lookup is exact first, then by the longest key that the model name starts with
    (so ``openai/gpt-4o-2024-08-06`` uses ``openai/gpt-4o`` while ``gpt-4o-mini`` keeps
    its own price), then ``"provider/*"``.

    Example:
        >>> table = CostTable.default().with_prices({"openai/my-ft": ModelPrice(
        ...     input_per_mtok=1.0, output_per_mtok=2.0)})
        >>> table.cost_usd("openai", "my-ft", input_tokens=1_000_000, output_tokens=0)
        1.0
    """

    prices: Mapping[str, ModelPrice] = attrs.field(
        factory=lambda: DEFAULT_PRICES, converter=_freeze
    )

    @classmethod
    def default(cls) -> CostTable:
        """The table of :data:`DEFAULT_PRICES`."""
        return cls(prices=DEFAULT_PRICES)

    def with_prices(self, prices: Mapping[str, ModelPrice]) -> CostTable:
        """A new table with ``prices`` added or replacing existing entries."""
        return CostTable(prices={**self.prices, **prices})

    def price(self, provider: str, model: str) -> ModelPrice | None:
        """The price for ``provider``/``model``, or ``None`` when unknown."""
        key = f"{provider}/{model}"
        if key in self.prices:
            return self.prices[key]
        best: str | None = None
        for candidate in self.prices:
            if candidate.endswith("/*"):
                continue
            if key.startswith(candidate) and (best is None or len(candidate) > len(best)):
                best = candidate
        if best is not None:
            return self.prices[best]
        return self.prices.get(f"{provider}/*")

    def cost_usd(
        self,
        provider: str,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
    ) -> float | None:
        """Cost of a call in USD, or ``None`` when the model is not in the table."""
        price = self.price(provider, model)
        if price is None:
            return None
        return price.cost_usd(input_tokens, output_tokens, cached_tokens)
