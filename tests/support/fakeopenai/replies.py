"""Turning a script step into the chunks and usage of a streamed or whole reply."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.support.fakeopenai.scripts import ErrorReply, TextReply, ToolCallsReply, as_tool_call

logger = logging.getLogger(__name__)


def _split_evenly(text: str, parts: int) -> list[str]:
    """Split ``text`` into ``parts`` contiguous, roughly equal, non-empty pieces (at least 1)."""
    parts = max(1, min(parts, len(text)))
    size, extra = divmod(len(text), parts)
    pieces, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def _text_of(content: Any) -> str:
    """Text of a message ``content`` (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            _text_of(part.get("text", "")) for part in content if isinstance(part, dict)
        )
    return ""


def default_prompt_tokens(body: Mapping[str, Any]) -> int:
    messages = body.get("messages") or []
    words = sum(len(_text_of(m.get("content")).split()) for m in messages if isinstance(m, dict))
    return max(1, words)


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


@dataclass
class _Reply:
    """A stream step expanded into the deltas of its chunks."""

    preamble: dict[str, Any]
    deltas: list[dict[str, Any]]
    finish_reason: str
    completion_tokens: int
    # The full message, for non-streaming requests.
    message: dict[str, Any]


def expand(step: TextReply | ToolCallsReply) -> _Reply:
    if isinstance(step, TextReply):
        text = "".join(step.deltas)
        return _Reply(
            preamble={"role": "assistant", "content": "", "refusal": None},
            deltas=[{"content": delta} for delta in step.deltas],
            finish_reason=step.finish_reason,
            completion_tokens=max(1, len(step.deltas)),
            message={"role": "assistant", "content": text, "refusal": None},
        )

    deltas: list[dict[str, Any]] = [{"content": delta} for delta in step.content]
    full_calls: list[dict[str, Any]] = []
    fragment_count = 0
    for index, call in enumerate(as_tool_call(c) for c in step.calls):
        call_id = call.id or f"call_{uuid.uuid4().hex[:24]}"
        arguments = (
            call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
        )
        # As the real API does: the header chunk names the call, the following chunks carry
        # only the index and a fragment of the JSON arguments.
        header = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        deltas.append({"tool_calls": [header]})
        for fragment in _split_evenly(arguments, call.fragments):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
            fragment_count += 1
        full_calls.append(
            {
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": arguments},
            }
        )

    content = "".join(step.content) or None
    if step.content or not deltas:
        preamble: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
    else:
        # Without text, the real API puts the role on the first tool-call header chunk.
        preamble = {"role": "assistant", "content": None, **deltas.pop(0)}
    return _Reply(
        preamble=preamble,
        deltas=deltas,
        finish_reason="tool_calls",
        completion_tokens=max(1, len(step.content) + fragment_count),
        message={
            "role": "assistant",
            "content": content,
            "refusal": None,
            "tool_calls": full_calls,
        },
    )


def error_body(step: ErrorReply) -> dict[str, Any]:
    code: str | None = None
    if step.status == 429:
        message, error_type = "Rate limit reached for requests (fake).", "requests"
        code = "rate_limit_exceeded"
    elif step.status >= 500:
        message = "The server had an error while processing your request (fake)."
        error_type = "server_error"
    else:
        message, error_type = "Invalid request (fake).", "invalid_request_error"
    return {
        "error": {
            "message": step.message if step.message is not None else message,
            "type": step.error_type if step.error_type is not None else error_type,
            "param": None,
            "code": step.code if step.code is not None else code,
        }
    }
