"""A client that rebuilds messages from a conversation's events across dropped streams.

`Rebuilt` applies events in the shapes of `conversations.events` (REST SSE, the chat
websocket; GraphQL events are converted by `from_graphql`) and checks as it goes:

- strict (REST SSE, GraphQL with `after`): every delta starts exactly where the text the
  client holds ends (no gap, nothing doubled) and nothing arrives for a message after
  its final event;
- lenient (the chat websocket's documented client rule): deltas are placed by `offset`,
  what the client has is skipped, and a delta past the end is a gap (an error) once the
  client has that message's snapshot.

`position()` is where the client is, in the format of the SSE `id:` (the oldest message
it holds unfinished and its length, else the newest message it holds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FINAL = {"message.completed", "message.failed"}


@dataclass
class Rebuilt:
    strict: bool = True
    texts: dict[int, str] = field(default_factory=dict)
    roles: dict[int, str] = field(default_factory=dict)
    streaming: set[int] = field(default_factory=set)
    final: set[int] = field(default_factory=set)
    deleted: set[int] = field(default_factory=set)
    deltas: int = 0

    def apply(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "message.delta":
            self._delta(event)
        elif kind == "message.created" or kind in FINAL:
            message = event["message"]
            message_id, text = message["id"], message["text"] or ""
            held = self.texts.get(message_id)
            if held is not None:
                assert held.startswith(text) or text.startswith(held), (message_id, held, text)
            if self.strict and kind == "message.created":
                assert message_id not in self.final, f"created after final: {message_id}"
            self.roles[message_id] = message["role"]
            if kind in FINAL or message["status"] != "streaming":
                self.texts[message_id] = text
                self.final.add(message_id)
                self.streaming.discard(message_id)
            else:
                # A snapshot: the stream goes on from its text.
                self.texts[message_id] = text if self.strict else max(held or "", text, key=len)
                self.streaming.add(message_id)
        elif kind == "message.deleted":
            for message_id in event["message_ids"]:
                self.deleted.add(message_id)
                self.texts.pop(message_id, None)
                self.streaming.discard(message_id)

    def _delta(self, event: dict[str, Any]) -> None:
        message_id, offset, delta = event["message_id"], event["offset"], event["delta"]
        self.deltas += 1
        if message_id in self.final:
            assert not self.strict, f"delta after the final event of {message_id}: {event}"
            return
        held = self.texts.get(message_id)
        if held is None:
            assert not self.strict, f"delta of a message never created: {event}"
            return  # lenient: before its snapshot, a client drops what it cannot place
        if self.strict:
            assert offset == len(held), (
                f"message {message_id}: delta at {offset}, client holds {len(held)} characters"
            )
        elif offset > len(held):
            return  # lenient: before the resumed snapshot arrives (websocket docs)
        if offset + len(delta) > len(held):
            self.texts[message_id] = held[:offset] + delta

    def position(self) -> str:
        if self.streaming:
            message_id = min(self.streaming)
            return f"{message_id}:{len(self.texts[message_id])}"
        held = [m for m in (*self.texts, *self.deleted)]
        return str(max(held, default=0))

    def whole_through(self) -> int:
        """The websocket `resume {after_id}`: the newest id up to which all is held whole."""
        if self.streaming:
            return min(self.streaming) - 1
        return max((*self.texts, *self.deleted), default=0)


GRAPHQL_TYPES = {
    "MessageCreated": "message.created",
    "MessageCompleted": "message.completed",
    "MessageFailed": "message.failed",
    "MessageDelta": "message.delta",
    "MessageDeleted": "message.deleted",
    "ConversationUpdated": "conversation.updated",
    "ConversationCleared": "conversation.cleared",
    "ConversationDeleted": "conversation.deleted",
}


def from_graphql(event: dict[str, Any]) -> dict[str, Any]:
    """A conversationEvents object in the REST/websocket event shape (what Rebuilt reads)."""
    kind = GRAPHQL_TYPES.get(event["__typename"], event["__typename"])
    out: dict[str, Any] = {"type": kind}
    if "message" in event:
        message = event["message"]
        out["message"] = {
            "id": int(message["id"]),
            "role": message["role"].lower(),
            "status": message["status"].lower(),
            "text": message["text"],
        }
    if kind == "message.delta":
        out.update(
            message_id=int(event["messageId"]),
            index=event["index"],
            offset=event["offset"],
            delta=event["delta"],
        )
    if kind == "message.deleted":
        out["message_ids"] = [int(m) for m in event["messageIds"]]
    if "conversation" in event:
        out["conversation"] = {"active_turn_id": event["conversation"].get("activeTurnId")}
    return out
