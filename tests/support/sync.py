"""A client's copy of a user's data, rebuilt from the changes feed, and the database's."""

from __future__ import annotations

from typing import Any

from conversations.models import Conversation, ConversationMessage
from conversations.payloads import conversation_payload, message_payload


class Replica:
    """What an app holds after replaying changes in order (docs/clients.md)."""

    def __init__(self) -> None:
        self.conversations: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[str, Any]] = {}

    def apply(self, change: dict[str, Any]) -> None:
        kind = change["type"]
        if kind == "conversation.upserted":
            self.conversations[change["conversation"]["id"]] = change["conversation"]
        elif kind == "message.upserted":
            self.messages[change["message"]["id"]] = change["message"]
        elif kind == "message.deleted":
            self.messages.pop(change["id"], None)
        elif kind in ("conversation.deleted", "conversation.cleared"):
            if kind == "conversation.deleted":
                self.conversations.pop(change["id"], None)
            self.messages = {
                pk: message
                for pk, message in self.messages.items()
                if message["conversation"] != change["id"]
            }
        else:
            raise AssertionError(f"unknown change type {kind!r}")

    def apply_all(self, changes: list[dict[str, Any]]) -> None:
        for change in changes:
            self.apply(change)

    def state(self) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
        return self.conversations, self.messages


def database_state(user: Any) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """The user's conversations and messages as the feed's payloads spell them."""
    conversations = {
        c.pk: conversation_payload(c)
        for c in Conversation.objects.filter(user=user).select_related("agent")
    }
    messages = {m.pk: message_payload(m) for m in ConversationMessage.objects.filter(user=user)}
    return conversations, messages
