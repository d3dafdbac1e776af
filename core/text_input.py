"""Text no part of Confab accepts: NUL characters and unpaired surrogates.

PostgreSQL cannot store U+0000 in text (the query fails: a 500), and a lone surrogate
(`"\\ud800"` in JSON) cannot be encoded as UTF-8 by any database driver, logger or
response encoder. Neither is ever meaningful in a chat, so every text a client sends
over HTTP is checked once where it enters (`core.middleware.UnsafeTextMiddleware` for
query strings and form fields, the REST JSON parser for bodies, a GraphQL extension for
variables and string literals) and refused with a 400-class error in the surface's
shape, naming the field.
"""

from __future__ import annotations

import re
from typing import Any

from core.errors import ValidationFailed

UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")
UNSAFE_TEXT_MESSAGE = "Text may not contain NUL characters or unpaired surrogates."


def is_unsafe_text(value: str) -> bool:
    return UNSAFE_TEXT.search(value) is not None


def unsafe_text_path(value: Any, root: str = "") -> str | None:
    """The dotted path of the first unsafe string (a key or a value) in a JSON-like
    value, or None. Iterative: a value nested as deep as a parser allows is walked
    without recursion."""
    stack: list[tuple[str, Any]] = [(root, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if UNSAFE_TEXT.search(item):
                return path or "non_field_errors"
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and UNSAFE_TEXT.search(key):
                    return path or "non_field_errors"
                stack.append((child_path, child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}.{i}" if path else str(i), child) for i, child in enumerate(item))
    return None


def unsafe_text_error(path: str) -> ValidationFailed:
    """The error every surface answers for unsafe text at `path` (400 VALIDATION_ERROR,
    field code `invalid_characters`)."""
    field = UNSAFE_TEXT.sub("\ufffd", path)  # the path itself may hold the character
    return ValidationFailed.for_field(field, "invalid_characters", UNSAFE_TEXT_MESSAGE)


def check_text(value: Any, root: str = "") -> None:
    """Raise `unsafe_text_error` when `value` holds unsafe text anywhere."""
    path = unsafe_text_path(value, root)
    if path is not None:
        raise unsafe_text_error(path)
