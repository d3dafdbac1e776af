"""Every write to conversations and messages goes through these functions.

Plain functions with keyword arguments, each in `transaction.atomic`, each
publishing its events with `transaction.on_commit`. REST, GraphQL, the
websocket consumer, the turn engine, admin actions and management commands
all call them.
"""

from conversations.services.branches import fork_conversation, switch_branch
from conversations.services.conversations import (
    UNSET,
    clear_conversation,
    create_conversation,
    delete_conversation,
    set_archived,
    update_conversation,
    validate_context,
)
from conversations.services.messages import append_message
from conversations.services.turns import (
    TurnLost,
    TurnStart,
    TurnTick,
    add_turn_message,
    begin_queued_turn,
    begin_turn,
    conversations_with_waiting_queue,
    end_turn,
    finish_message,
    has_queued_messages,
    recover_interrupted_turns,
    request_cancel,
    tick_turns,
)

__all__ = [
    "UNSET",
    "TurnLost",
    "TurnStart",
    "TurnTick",
    "add_turn_message",
    "append_message",
    "begin_queued_turn",
    "begin_turn",
    "clear_conversation",
    "conversations_with_waiting_queue",
    "create_conversation",
    "delete_conversation",
    "end_turn",
    "finish_message",
    "fork_conversation",
    "has_queued_messages",
    "recover_interrupted_turns",
    "request_cancel",
    "set_archived",
    "switch_branch",
    "tick_turns",
    "update_conversation",
    "validate_context",
]
