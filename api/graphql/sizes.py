"""Size limits: the document and body sizes the transports enforce before any parsing
(settings, with defaults), and the errors of the cost and response-size limits
(`extensions.QueryCost`, `extensions.ResponseSize`)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

from core.errors import ApplicationError

DEFAULT_MAX_DOCUMENT_BYTES = 32_000
DOCUMENT_TOO_LARGE = "DOCUMENT_TOO_LARGE"


def max_document_chars() -> int:
    """CONFAB_GRAPHQL_MAX_DOCUMENT_BYTES: the longest GraphQL document accepted."""
    return getattr(settings, "CONFAB_GRAPHQL_MAX_DOCUMENT_BYTES", DEFAULT_MAX_DOCUMENT_BYTES)


def document_too_large_message() -> str:
    return f"The GraphQL document is longer than {max_document_chars()} characters."


def document_too_large(query: Any) -> bool:
    return isinstance(query, str) and len(query) > max_document_chars()


def document_error() -> dict[str, Any]:
    """The GraphQL error (formatted) of a document over the limit."""
    return {
        "message": document_too_large_message(),
        "extensions": {"code": DOCUMENT_TOO_LARGE, "type": "invalid_request"},
    }


def decode_json(data: str | bytes) -> object:
    """`json.loads` for request bodies and websocket frames, where nesting deeper than
    Python's recursion limit (a 200 kB body of brackets) is invalid JSON, not a crash."""
    try:
        return json.loads(data)
    except RecursionError:
        raise json.JSONDecodeError("JSON nested too deeply", "", 0) from None


class QueryCostExceeded(ApplicationError):
    """An operation whose answer could hold more objects than CONFAB_GRAPHQL_MAX_COST
    (`cost.operation_cost`); refused before it runs."""

    code = "QUERY_COST_EXCEEDED"
    type = "invalid_request"
    status = 400

    @classmethod
    def of(cls, cost: int, max_cost: int) -> QueryCostExceeded:
        return cls(
            f"This operation could return {cost} objects; the limit is {max_cost}. Ask for "
            "smaller pages (first/last) or fewer fields.",
            extra={"cost": cost, "max_cost": max_cost},
        )


class ResponseTooLarge(ApplicationError):
    """An answer larger than CONFAB_GRAPHQL_MAX_RESPONSE_BYTES as JSON; withheld (a
    mutation's changes are kept)."""

    code = "RESPONSE_TOO_LARGE"
    type = "invalid_request"
    status = 400

    @classmethod
    def of(cls, max_bytes: int) -> ResponseTooLarge:
        return cls(
            f"The answer would be larger than {max_bytes} bytes. Ask for smaller pages "
            "(first/last) or fewer fields.",
            extra={"max_bytes": max_bytes},
        )
