"""The turn engine: one user message in, one streamed and stored reply out.

See `engine` for the rules (human message first, streaming placeholder, bounded
history window, tool loop, failures, cancel, one active turn per conversation).
"""

from conversations.turns.approval import decide_tool_call, expire_tool_calls
from conversations.turns.config import TurnConfig, TurnHooks, build_turn_config, load_agent
from conversations.turns.engine import (
    TurnHandle,
    TurnResult,
    cancel_turn,
    start_greeting,
    start_queued_turn,
    start_turn,
    start_waiting_queues,
    wait_for_result,
)

__all__ = [
    "TurnConfig",
    "TurnHandle",
    "TurnHooks",
    "TurnResult",
    "build_turn_config",
    "cancel_turn",
    "decide_tool_call",
    "expire_tool_calls",
    "load_agent",
    "start_greeting",
    "start_queued_turn",
    "start_turn",
    "start_waiting_queues",
    "wait_for_result",
]
