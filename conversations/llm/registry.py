"""The model registry: which models exist, who serves them, and what they can do.

One database table (`LanguageModel`), seeded by a migration (0008_model_registry) and
edited in the admin: a deployment adds a model, changes a price or turns one off
without a release. A turn reads its model's row once, at start (`model_info`); a name
that is not in the table (an agent or CONFAB_LLM_MODEL naming a model the registry does
not know) still runs, with the defaults of `unknown_model_info`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models

# A name the registry does not know runs with these (generous, so nothing is refused
# that the provider itself would accept; the provider answers if it cannot).
UNKNOWN_CONTEXT_WINDOW = 128_000


class Provider(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible server"
    ANTHROPIC = "anthropic", "Anthropic"
    GOOGLE = "google", "Google Gemini"
    OLLAMA = "ollama", "Ollama"
    DEMO = "demo", "Offline demo"


class LanguageModel(models.Model):
    """A chat model a conversation can run with: its provider, limits and prices."""

    name = models.CharField(max_length=100, unique=True, help_text="The provider's model id.")
    label = models.CharField(max_length=100, blank=True, help_text="Shown in model pickers.")
    provider = models.CharField(max_length=32, choices=Provider.choices)
    context_window = models.PositiveIntegerField(help_text="Tokens the model reads per request.")
    max_output_tokens = models.PositiveIntegerField(help_text="Longest reply, in tokens.")
    supports_images = models.BooleanField(default=False)
    supports_tools = models.BooleanField(default=True)
    input_price_per_million = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True, help_text="USD per 1M tokens."
    )
    output_price_per_million = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True, help_text="USD per 1M tokens."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        app_label = "conversations"
        ordering = ["provider", "name"]

    def __str__(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class ModelInfo:
    """What a turn needs to know of its model (a registry row, or the unknown defaults)."""

    name: str
    provider: str
    context_window: int
    max_output_tokens: int | None
    supports_images: bool
    supports_tools: bool
    known: bool = True
    # USD per million tokens; None: not in the registry (conversations/usage/prices.py
    # falls back to CONFAB_PRICE_*_PER_MILLION).
    input_price_per_million: Decimal | None = None
    output_price_per_million: Decimal | None = None

    @classmethod
    def from_row(cls, row: LanguageModel) -> ModelInfo:
        return cls(
            name=row.name,
            provider=row.provider,
            context_window=row.context_window,
            max_output_tokens=row.max_output_tokens,
            supports_images=row.supports_images,
            supports_tools=row.supports_tools,
            input_price_per_million=row.input_price_per_million,
            output_price_per_million=row.output_price_per_million,
        )


def default_provider() -> str:
    """The provider of names the registry does not know: the forced one, else OpenAI
    (OPENAI_BASE_URL makes that any OpenAI-compatible server)."""
    forced = settings.CONFAB_LLM_PROVIDER
    return Provider.OPENAI if forced in ("auto", "") else forced


def unknown_model_info(name: str) -> ModelInfo:
    return ModelInfo(
        name=name,
        provider=default_provider(),
        context_window=UNKNOWN_CONTEXT_WINDOW,
        max_output_tokens=None,
        supports_images=True,
        supports_tools=True,
        known=False,
    )


def model_info(name: str) -> ModelInfo:
    """The registry's entry for `name` (one query). CONFAB_LLM_PROVIDER other than
    `auto` forces its provider on every model (`demo`: the offline model)."""
    row = LanguageModel.objects.filter(name=name).first()
    info = ModelInfo.from_row(row) if row is not None else unknown_model_info(name)
    forced = settings.CONFAB_LLM_PROVIDER
    if forced not in ("auto", "") and info.provider != forced:
        info = ModelInfo(**{**info.__dict__, "provider": forced})
    return info


def active_models() -> models.QuerySet[LanguageModel]:
    return LanguageModel.objects.filter(is_active=True).order_by("provider", "name")


def _price(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def model_payload(row: LanguageModel) -> dict[str, Any]:
    """A registry entry as every surface shows it (GET /api/v1/models/, GraphQL `models`)."""
    return {
        "name": row.name,
        "label": row.label or row.name,
        "provider": row.provider,
        "context_window": row.context_window,
        "max_output_tokens": row.max_output_tokens,
        "supports_images": row.supports_images,
        "supports_tools": row.supports_tools,
        "input_price_per_million": _price(row.input_price_per_million),
        "output_price_per_million": _price(row.output_price_per_million),
    }


# The seed of the table (migration 0008_model_registry). Prices: the providers' public
# list prices in USD per million tokens when written; edit them in the admin.
SEED_MODELS: list[dict[str, Any]] = [
    {
        "name": "gpt-4o",
        "label": "GPT-4o",
        "provider": Provider.OPENAI,
        "context_window": 128_000,
        "max_output_tokens": 16_384,
        "supports_images": True,
        "input_price_per_million": "2.50",
        "output_price_per_million": "10.00",
    },
    {
        "name": "gpt-4o-mini",
        "label": "GPT-4o mini",
        "provider": Provider.OPENAI,
        "context_window": 128_000,
        "max_output_tokens": 16_384,
        "supports_images": True,
        "input_price_per_million": "0.15",
        "output_price_per_million": "0.60",
    },
    {
        "name": "gpt-4.1",
        "label": "GPT-4.1",
        "provider": Provider.OPENAI,
        "context_window": 1_047_576,
        "max_output_tokens": 32_768,
        "supports_images": True,
        "input_price_per_million": "2.00",
        "output_price_per_million": "8.00",
    },
    {
        "name": "claude-sonnet-4-5",
        "label": "Claude Sonnet 4.5",
        "provider": Provider.ANTHROPIC,
        "context_window": 200_000,
        "max_output_tokens": 64_000,
        "supports_images": True,
        "input_price_per_million": "3.00",
        "output_price_per_million": "15.00",
    },
    {
        "name": "claude-haiku-4-5",
        "label": "Claude Haiku 4.5",
        "provider": Provider.ANTHROPIC,
        "context_window": 200_000,
        "max_output_tokens": 64_000,
        "supports_images": True,
        "input_price_per_million": "1.00",
        "output_price_per_million": "5.00",
    },
    {
        "name": "gemini-2.5-flash",
        "label": "Gemini 2.5 Flash",
        "provider": Provider.GOOGLE,
        "context_window": 1_048_576,
        "max_output_tokens": 65_536,
        "supports_images": True,
        "input_price_per_million": "0.30",
        "output_price_per_million": "2.50",
    },
    {
        "name": "gemini-2.5-pro",
        "label": "Gemini 2.5 Pro",
        "provider": Provider.GOOGLE,
        "context_window": 1_048_576,
        "max_output_tokens": 65_536,
        "supports_images": True,
        "input_price_per_million": "1.25",
        "output_price_per_million": "10.00",
    },
    {
        "name": "llama3.2",
        "label": "Llama 3.2 (Ollama)",
        "provider": Provider.OLLAMA,
        "context_window": 128_000,
        "max_output_tokens": 4_096,
        "supports_images": False,
        "input_price_per_million": "0",
        "output_price_per_million": "0",
    },
    {
        "name": "confab-demo-offline",
        "label": "Offline demo",
        "provider": Provider.DEMO,
        "context_window": 32_000,
        "max_output_tokens": 1_024,
        "supports_images": True,
        "input_price_per_million": "0",
        "output_price_per_million": "0",
    },
]


def install_seed_models(model_class: Any) -> None:
    """Create the seed rows that do not exist (by name); existing rows are left as edited."""
    for spec in SEED_MODELS:
        model_class.objects.get_or_create(name=spec["name"], defaults=dict(spec))
