"""What a model call costs: the registry's prices, else CONFAB_PRICE_*_PER_MILLION."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Prices:
    """USD per million input and output tokens."""

    input_per_million: Decimal
    output_per_million: Decimal

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        return (
            Decimal(input_tokens) * self.input_per_million
            + Decimal(output_tokens) * self.output_per_million
        ) / MILLION

    @property
    def dearest_per_million(self) -> Decimal:
        return max(self.input_per_million, self.output_per_million)


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def prices_of(info: Any) -> Prices:
    """The prices of a model (`ModelInfo`): its registry entry's, each price the registry
    leaves empty (or a model it does not know) from settings."""
    input_price = getattr(info, "input_price_per_million", None)
    output_price = getattr(info, "output_price_per_million", None)
    return Prices(
        input_per_million=_decimal(
            input_price if input_price is not None else settings.CONFAB_PRICE_INPUT_PER_MILLION
        ),
        output_per_million=_decimal(
            output_price if output_price is not None else settings.CONFAB_PRICE_OUTPUT_PER_MILLION
        ),
    )
