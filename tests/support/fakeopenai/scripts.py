"""Script steps: what the fake server answers, one step per request."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_REPLY = "Hello from the fake server."


@dataclass
class TextReply:
    """Reply with assistant text, streamed as one chunk per element of ``deltas``."""

    deltas: Sequence[str]
    usage: tuple[int, int] | None = None
    chunk_delay: float = 0.0
    initial_delay: float = 0.0
    die_after: int | None = None
    finish_reason: str = "stop"
    model: str | None = None


@dataclass
class ToolCall:
    """One function tool call of a ``ToolCallsReply``.

    ``arguments`` is a mapping (JSON-encoded by the server) or an already encoded string; it is
    streamed in ``fragments`` pieces. ``id`` defaults to a random ``call_...`` id.
    """

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None
    fragments: int = 3


@dataclass
class ToolCallsReply:
    """Reply with one or more tool calls (``finish_reason: "tool_calls"``)."""

    calls: Sequence[ToolCall]
    content: Sequence[str] = ()
    usage: tuple[int, int] | None = None
    chunk_delay: float = 0.0
    initial_delay: float = 0.0
    die_after: int | None = None
    model: str | None = None


@dataclass
class ErrorReply:
    """Reply with an HTTP error status and an OpenAI-style error body."""

    status: int = 500
    message: str | None = None
    error_type: str | None = None
    code: str | None = None
    retry_after: float | None = None
    initial_delay: float = 0.0


Step = TextReply | ToolCallsReply | ErrorReply

_STEP_TYPES: dict[str, type[Step]] = {
    "text": TextReply,
    "tool_calls": ToolCallsReply,
    "error": ErrorReply,
}


def default_reply() -> TextReply:
    """Return the reply used when no step is queued: ``DEFAULT_REPLY`` in three chunks."""
    return TextReply(["Hello", " from the fake", " server."])


def step_to_dict(step: Step) -> dict[str, Any]:
    """Serialize a step to its JSON-compatible form (with a ``"type"`` key)."""
    type_name = next(name for name, cls in _STEP_TYPES.items() if isinstance(step, cls))
    return {"type": type_name, **dataclasses.asdict(step)}


def step_from_dict(data: Mapping[str, Any]) -> Step:
    """Build a step from its JSON form; raises ``ValueError`` on unknown types or keys."""
    fields = dict(data)
    type_name = fields.pop("type", None)
    if type_name == "hang":
        then = fields.pop("then", None)
        seconds = float(fields.pop("seconds"))
        if fields:
            raise ValueError(f"unknown keys for a hang step: {sorted(fields)}")
        base = step_from_dict(then) if then is not None else default_reply()
        return dataclasses.replace(base, initial_delay=seconds)
    cls = _STEP_TYPES.get(str(type_name))
    if cls is None:
        raise ValueError(f"unknown step type {type_name!r}; expected one of {sorted(_STEP_TYPES)}")
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"unknown keys for a {type_name!r} step: {sorted(unknown)}")
    if fields.get("usage") is not None:
        prompt_tokens, completion_tokens = fields["usage"]
        fields["usage"] = (int(prompt_tokens), int(completion_tokens))
    if cls is ToolCallsReply:
        fields["calls"] = [as_tool_call(call) for call in fields.get("calls", ())]
    return cls(**fields)


def as_tool_call(call: ToolCall | Mapping[str, Any]) -> ToolCall:
    return call if isinstance(call, ToolCall) else ToolCall(**call)


def as_step(step: Step | Mapping[str, Any]) -> Step:
    return step_from_dict(step) if isinstance(step, Mapping) else step
