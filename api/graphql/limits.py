"""Size limits the transports enforce before any parsing (settings, with defaults)."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings

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
