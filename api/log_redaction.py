"""Keep credentials out of logs written by the servers Confab runs under.

Django and knox never log a token (knox stores a digest and an 8-character
prefix; SQL logs show only those). The ASGI servers do: uvicorn's access log and
its websocket handshake line include the query string (`?token=` is how browser
websockets authenticate), and at `--log-level debug` the websocket protocol
trace prints every request header, `Authorization` included. `RedactTokens`
rewrites such records in place (arguments too, so uvicorn's access formatter
still gets its five fields); `install()` attaches it to those servers' loggers.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"
# A `token=` query parameter, and the credential after an auth scheme (knox tokens
# are 64 hex characters; shorter words after "token" are left alone).
_PATTERNS = (
    re.compile(r"(?i)([?&](?:access_)?token=)[^&#\s\"']+"),
    re.compile(r"(?i)\b((?:bearer|token)\s+)[A-Za-z0-9._~+/=-]{16,}"),
)
# Loggers of the ASGI servers (uvicorn's protocol traces go through uvicorn.error).
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "daphne", "daphne.server")


def redact(text: str) -> str:
    """`text` with every token-looking credential replaced by [redacted]."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda match: match.group(1) + REDACTED, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("latin-1")).encode("latin-1")
    return value


class RedactTokens(logging.Filter):
    """A logging filter that redacts tokens from a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_value(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redact_value(value) for key, value in record.args.items()}
        return True


def install() -> None:
    """Attach RedactTokens to the ASGI servers' loggers (idempotent)."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
