"""Structured logs: one JSON object per line in production (DEBUG keeps colorlog).

Standard library only: `JsonFormatter` renders a record as
`{"time", "level", "logger", "message", "request_id", ...}` (plus `exc_info` as text
and the extra fields a call passes), one line each, for the log shipper to parse.
What a line may contain is decided where it is written: Confab never logs a token
or a prompt (api/log_redaction.py redacts the servers' lines; a test runs a turn and
reads its logs: tests/core/test_logs.py).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# LogRecord's own attributes: everything else on a record came from `extra=`.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or None,
        }
        if line["request_id"] == "-":
            line["request_id"] = None
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)
