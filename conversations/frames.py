"""Parse and validate the websocket consumer's client frames.

Client -> server frames are JSON objects with a `type`:
`message {content, client_message_id?, attachments?, images__base64?, on_busy?}`,
`cancel`, `regenerate`, `ping`, `resume {after_id}`, `tool.approve {call_id}`,
`edit {message_id, content, client_message_id?}` (a new version of a human message,
answered by a turn), `branch {message_id}` (switch to that message's newest leaf),
`tool.deny {call_id, reason?}` (a paused turn's tool call, conversations.approvals).
Anything else is a `FrameError` with a stable code; the connection stays open. Text
that cannot be stored (a NUL character, which PostgreSQL refuses, or a lone
surrogate, which no database can encode) is `INVALID_TEXT`, wherever it is in the frame.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

FRAME_TYPES = {
    "message",
    "cancel",
    "regenerate",
    "edit",
    "branch",
    "ping",
    "resume",
    "tool.approve",
    "tool.deny",
}
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class FrameError(ValueError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Frame:
    type: str
    data: dict[str, Any] = field(default_factory=dict)


def parse_frame(text: str | None, *, max_bytes: int) -> Frame:
    """A validated client frame, or FrameError (`INVALID_FRAME`, `FRAME_TOO_LARGE`, …)."""
    if text is None:
        raise FrameError("INVALID_FRAME", "Frames are JSON text, not binary.")
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise FrameError("FRAME_TOO_LARGE", f"Frames are limited to {max_bytes} bytes.")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise FrameError("INVALID_JSON", "The frame is not valid JSON.") from None
    if not isinstance(data, dict):
        raise FrameError("INVALID_FRAME", "A frame is a JSON object with a type.")
    if has_unstorable_text(data):
        raise FrameError(
            "INVALID_TEXT", "Text must not contain NUL characters or unpaired surrogates."
        )
    frame_type = data.get("type")
    if not isinstance(frame_type, str) or frame_type not in FRAME_TYPES:
        raise FrameError(
            "UNKNOWN_TYPE", f"Unknown frame type; expected one of {sorted(FRAME_TYPES)}."
        )
    if frame_type == "resume":
        after_id = data.get("after_id", 0)
        if not isinstance(after_id, int) or isinstance(after_id, bool) or not 0 <= after_id < 2**63:
            raise FrameError(
                "INVALID_FRAME", "resume.after_id must be a message id (integer >= 0)."
            )
    if frame_type in ("edit", "branch"):
        message_id = data.get("message_id")
        if not isinstance(message_id, int) or isinstance(message_id, bool) or message_id < 1:
            raise FrameError("INVALID_FRAME", f"{frame_type}.message_id must be a message id.")
    if frame_type in ("tool.approve", "tool.deny"):
        call_id = data.get("call_id")
        if not isinstance(call_id, str) or not 0 < len(call_id) <= 200:
            raise FrameError("INVALID_FRAME", f"{frame_type}.call_id must be a tool call id.")
    return Frame(type=frame_type, data=data)


def has_unstorable_text(value: Any) -> bool:
    """Whether a string anywhere in the parsed frame (keys included) holds a NUL or a lone
    surrogate (JSON's `\\u0000` and `\\ud800` escapes decode to them)."""
    if isinstance(value, str):
        return UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(has_unstorable_text(k) or has_unstorable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_unstorable_text(item) for item in value)
    return False
