"""Every read a surface pages or filters.

Owner scoping is built in: each function takes the requesting user and never
returns another user's rows, so a surface cannot forget the check. Someone
else's object is `NotFound`, exactly like a missing one. Selectors take typed
arguments; what clients send is parsed by `conversations.inputs` first.
"""

from conversations.selectors.agents import agents_by_slug, get_agent, list_agents, list_models
from conversations.selectors.conversations import (
    ConversationPage,
    aget_conversation,
    aparse_for_conversation,
    attach_last_messages,
    conversation_page,
    conversations_of,
    filter_conversations,
    get_conversation,
    last_messages,
    list_cursor,
    parse_for_conversation,
)
from conversations.selectors.messages import (
    MessagePage,
    active_path,
    alast_message_id,
    amessage_count,
    astreaming_text,
    get_message,
    get_user_message,
    history_window,
    in_history_order,
    message_of,
    message_page,
    messages_after,
    messages_of,
    paused_replies,
    user_message_page,
)

__all__ = [
    "ConversationPage",
    "MessagePage",
    "active_path",
    "agents_by_slug",
    "aget_conversation",
    "alast_message_id",
    "amessage_count",
    "aparse_for_conversation",
    "astreaming_text",
    "attach_last_messages",
    "conversation_page",
    "conversations_of",
    "filter_conversations",
    "get_agent",
    "get_conversation",
    "get_message",
    "get_user_message",
    "history_window",
    "in_history_order",
    "last_messages",
    "list_agents",
    "list_cursor",
    "list_models",
    "message_of",
    "message_page",
    "messages_after",
    "messages_of",
    "parse_for_conversation",
    "paused_replies",
    "user_message_page",
]
