"""ApplicationError -> GraphQL, in one place.

Two channels, as in Saleor and GitHub:
- input errors (`ValidationFailed`) of a mutation come back in the payload's
  `errors: [FieldError!]!`, with the argument they concern;
- everything else (NOT_FOUND, conflicts such as TURN_IN_PROGRESS, RATE_LIMITED,
  NOT_AUTHENTICATED, and invalid query arguments) is a GraphQL error whose
  `extensions` are `{code, type}` (+ `fields` for validation errors), set by
  `extensions.ApplicationErrors` from `error_extensions` below.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from strawberry.utils.str_converters import to_camel_case

from api.graphql.types.errors import FieldError
from core.errors import ApplicationError, ValidationFailed

P = TypeVar("P")


def graphql_field_name(field: str) -> str:
    """A domain field path as the client spelled it: `client_message_id` -> `clientMessageId`.

    Only the first segment is an argument name; `context.<variable>` keeps the
    variable as written (it may be any Unicode word).
    """
    head, dot, rest = field.partition(".")
    return to_camel_case(head) + dot + rest


def field_errors_of(error: ApplicationError) -> list[FieldError]:
    """The FieldErrors of a validation failure (one without fields has field null)."""
    errors = [
        FieldError(field=graphql_field_name(name), code=item["code"], message=item["message"])
        for name, items in error.fields.items()
        for item in items
    ]
    return errors or [FieldError(field=None, code="invalid", message=error.detail)]


def error_extensions(error: ApplicationError) -> dict[str, Any]:
    """`extensions` of a GraphQL error raised from an ApplicationError."""
    extensions: dict[str, Any] = {"code": error.code, "type": error.type}
    if error.fields:
        extensions["fields"] = [
            {"field": item.field, "code": item.code, "message": item.message}
            for item in field_errors_of(error)
        ]
    for key, value in error.extra.items():
        extensions[to_camel_case(key)] = value
    return extensions


async def with_field_errors(payload: type[P], action: Awaitable[P]) -> P:
    """Run a mutation's work; a ValidationFailed becomes `payload(errors=[...])`.

    Other ApplicationErrors propagate and become GraphQL errors.
    """
    try:
        return await action
    except ValidationFailed as error:
        return payload(errors=field_errors_of(error))  # type: ignore[call-arg]
