"""How every surface writes a timestamp."""

from __future__ import annotations

from typing import Any


def iso_timestamp(value: Any) -> str | None:
    """A timestamp as every surface writes it: ISO 8601 in UTC with a `Z` (as DRF does)."""
    return value.isoformat().replace("+00:00", "Z") if value else None
