"""The one definition of Confab's live events, and the one way to publish them.

Every live surface (the websocket consumer, GraphQL subscriptions, SSE) reads
these events from the Channels layer and forwards them unchanged; none invents
its own shapes. An event is a JSON object with `type` plus the fields below:

- `message.created   {conversation_id, message}`
- `message.delta     {conversation_id, message_id, index, offset, delta}`
  (`index` counts deltas of that message from 0; `offset` is where `delta`
  starts in the message's text, so a client that already holds a longer text
  from a snapshot can skip or trim it)
- `message.completed {conversation_id, message}` (status `complete` or `cancelled`)
- `message.failed    {conversation_id, message, error: {code, message}}`
- `message.deleted   {conversation_id, message_ids}` (not emitted since messages
  became a tree: a regenerate keeps the old reply; kept for clients that handle it)
- `conversation.branch_changed {conversation_id, active_leaf_id, conversation}` (a
  regenerate, an edit or a branch switch changed the active branch: its messages are
  the path from a root to `active_leaf_id`; a client re-reads its history page)
- `conversation.created | conversation.updated | conversation.cleared
   | conversation.deleted {conversation_id, conversation}`
- `tool.approval_requested {conversation_id, message_id, turn_id, calls: [approval]}`
  (a turn paused: its AI message is `awaiting_approval`; each approval is
  `{call_id, name, arguments, decision, decided_by, reason, decided_at, deadline}`)
- `tool.approval_decided {conversation_id, message_id, turn_id, call: approval}`
  (one call was approved or denied, by the user, the timeout or a cancel)

Events go to the conversation's group; events that change the conversation
list (`conversation.*`), and `tool.approval_requested` (a pause waits for the user on
any device), also go to the owner's user group. Publishing never
raises: when the layer is down, live delivery degrades (logged) while the
stored data, the source of truth, is already committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from conversations.payloads import conversation_payload, message_payload, tool_approval_payload
from core import metrics

if TYPE_CHECKING:
    from conversations.models import Conversation, ConversationMessage, ToolApproval

logger = logging.getLogger(__name__)

# The Channels message type every event travels under (handler `confab_event`).
CHANNEL_MESSAGE_TYPE = "confab.event"


class EventType(StrEnum):
    MESSAGE_CREATED = "message.created"
    MESSAGE_DELTA = "message.delta"
    MESSAGE_COMPLETED = "message.completed"
    MESSAGE_FAILED = "message.failed"
    MESSAGE_DELETED = "message.deleted"
    CONVERSATION_CREATED = "conversation.created"
    CONVERSATION_UPDATED = "conversation.updated"
    CONVERSATION_CLEARED = "conversation.cleared"
    CONVERSATION_DELETED = "conversation.deleted"
    CONVERSATION_BRANCH_CHANGED = "conversation.branch_changed"
    TOOL_APPROVAL_REQUESTED = "tool.approval_requested"
    TOOL_APPROVAL_DECIDED = "tool.approval_decided"


def conversation_group(conversation_id: int) -> str:
    return f"confab.conversation.{conversation_id}"


def user_group(user_id: int) -> str:
    return f"confab.user.{user_id}"


def message_event(event_type: EventType, message: ConversationMessage) -> dict[str, Any]:
    event = {
        "type": str(event_type),
        "conversation_id": message.conversation_id,
        "message": message_payload(message),
    }
    if event_type == EventType.MESSAGE_FAILED:
        event["error"] = message.error or {"code": "failed", "message": "The reply failed."}
    return event


def snapshot_event(message: ConversationMessage) -> dict[str, Any]:
    """A stored message as the event a live client would have seen last for it: the one
    shape every surface resumes with (the chat websocket's `resume`, SSE streams)."""
    from conversations.models import MessageStatus

    if message.status == MessageStatus.STREAMING:
        return message_event(EventType.MESSAGE_CREATED, message)
    if message.status == MessageStatus.FAILED:
        return message_event(EventType.MESSAGE_FAILED, message)
    return message_event(EventType.MESSAGE_COMPLETED, message)


def delta_event(
    *, conversation_id: int, message_id: int, index: int, offset: int, delta: str
) -> dict[str, Any]:
    return {
        "type": str(EventType.MESSAGE_DELTA),
        "conversation_id": conversation_id,
        "message_id": message_id,
        "index": index,
        "offset": offset,
        "delta": delta,
    }


def branch_changed_event(conversation: Conversation) -> dict[str, Any]:
    """The active branch of `conversation` changed; it ends at its `active_leaf_id`."""
    return {
        "type": str(EventType.CONVERSATION_BRANCH_CHANGED),
        "conversation_id": conversation.id,
        "active_leaf_id": conversation.active_leaf_id,
        "conversation": conversation_payload(conversation),
    }


def conversation_event(event_type: EventType, conversation: Conversation) -> dict[str, Any]:
    return {
        "type": str(event_type),
        "conversation_id": conversation.id,
        "conversation": conversation_payload(conversation),
    }


def approval_event(
    event_type: EventType, message: ConversationMessage, approvals: list[ToolApproval]
) -> dict[str, Any]:
    """`tool.approval_requested` (every call of the message waiting for a decision) or
    `tool.approval_decided` (the one call decided)."""
    event: dict[str, Any] = {
        "type": str(event_type),
        "conversation_id": message.conversation_id,
        "message_id": message.id,
        "turn_id": str(message.turn_id) if message.turn_id else None,
    }
    if event_type == EventType.TOOL_APPROVAL_REQUESTED:
        event["calls"] = [tool_approval_payload(approval) for approval in approvals]
    else:
        event["call"] = tool_approval_payload(approvals[0])
    return event


def _groups_for(event: dict[str, Any], user_id: int | None) -> list[str]:
    groups = [conversation_group(event["conversation_id"])]
    # A pause waits for the user wherever they are: the user's group too (every device's
    # conversation list hears it, not only the sockets open on this conversation). Its
    # decision concerns only the conversation's own listeners.
    to_user = (
        event["type"].startswith("conversation.")
        or event["type"] == EventType.TOOL_APPROVAL_REQUESTED
    )
    if user_id is not None and to_user:
        groups.append(user_group(user_id))
    return groups


class DeliveryFailures:
    """The log of a channel-layer outage: its first failure with the traceback, then a
    count once a minute, then its end. A reply streaming through an outage publishes
    every few tens of milliseconds; a traceback each time buried everything else."""

    SUMMARY_SECONDS = 60.0

    def __init__(self) -> None:
        self.since: float | None = None
        self.count = 0
        self.last_logged = 0.0

    def failed(self, event_type: str) -> None:
        now = time.monotonic()
        self.count += 1
        if self.since is None:
            self.since = self.last_logged = now
            logger.warning(
                "Live delivery of %s failed; data is stored. Further failures are "
                "counted once a minute until delivery works again.",
                event_type,
                exc_info=True,
            )
        elif now - self.last_logged >= self.SUMMARY_SECONDS:
            self.last_logged = now
            logger.warning(
                "Live delivery still failing: %d events not delivered live in %.0f s; "
                "data is stored.",
                self.count,
                now - self.since,
            )

    def delivered(self) -> None:
        if self.since is None:
            return
        logger.warning(
            "Live delivery works again after %.1f s; %d events were not delivered live "
            "(data is stored).",
            time.monotonic() - self.since,
            self.count,
        )
        self.since, self.count = None, 0


delivery_failures = DeliveryFailures()

# Called with a cause when a publish fails. Socket management registers here
# (`conversations.live` closes this process's sockets so their clients resume from
# the stored data) so that events need not know about sockets.
publish_failure_listeners: list[Callable[[str], None]] = []


async def apublish(event: dict[str, Any], *, user_id: int | None = None) -> bool:
    """Send an event to its groups now. Returns False when the layer failed."""
    layer = get_channel_layer()
    message = {"type": CHANNEL_MESSAGE_TYPE, "event": event}
    try:
        for group in _groups_for(event, user_id):
            await layer.group_send(group, message)
    except Exception:  # noqa: BLE001 - any layer error: logged by delivery_failures
        delivery_failures.failed(event["type"])
        metrics.publish_failed(event["type"])
        for listener in publish_failure_listeners:
            listener(f"publishing {event['type']} failed")
        return False
    delivery_failures.delivered()
    return True


def publish_on_commit(event: dict[str, Any], *, user_id: int | None = None) -> None:
    """Publish after the surrounding transaction commits (never for rolled-back writes)."""
    transaction.on_commit(lambda: async_to_sync(apublish)(event, user_id=user_id))
