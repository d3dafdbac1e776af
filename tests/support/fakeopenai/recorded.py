"""What the fake server received: one RecordedRequest per chat request."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from tests.support.fakeopenai.scripts import Step, step_to_dict

logger = logging.getLogger(__name__)


@dataclass
class RecordedRequest:
    """A request received by the server, recorded before the reply is sent.

    ``headers`` has lower-cased names. ``body`` is the parsed JSON body (``None`` if empty or
    not JSON). ``connection_id`` identifies the TCP connection (equal ids mean keep-alive reuse).
    ``chunks`` holds every streamed chunk as sent, each with its ``x_sent_at`` timestamp.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw_body: bytes
    received_at: float
    connection_id: int
    step: Step | None = None
    chunks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The ``messages`` of a chat-completions body (empty list if absent)."""
        if isinstance(self.body, dict):
            return list(self.body.get("messages") or [])
        return []

    @property
    def chunk_times(self) -> list[float]:
        """``time.time()`` at which each streamed chunk was written."""
        return [chunk["x_sent_at"] for chunk in self.chunks]

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form, as returned by ``GET /_fake/requests``."""
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
            "received_at": self.received_at,
            "connection_id": self.connection_id,
            "step": step_to_dict(self.step) if self.step is not None else None,
            "chunks": self.chunks,
        }
