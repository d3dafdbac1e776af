"""Typed input errors of mutation payloads."""

from __future__ import annotations

import strawberry


@strawberry.type(description="An input error of a mutation: which argument, why, and what to show.")
class FieldError:
    field: str | None = strawberry.field(
        description=(
            "The argument in error, camelCase as sent (`title`, `clientMessageId`), "
            "or `context.<variable>` for a template variable; null when not tied to one."
        )
    )
    code: str = strawberry.field(
        description=(
            "Stable, machine-readable reason: `invalid`, `blank`, `too_long`, `not_found`, "
            "`inactive`, `unknown_variable`, `missing_variable`, `out_of_range`, `exclusive`."
        )
    )
    message: str = strawberry.field(description="A human-readable explanation.")
