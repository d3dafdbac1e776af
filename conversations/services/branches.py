"""Branch writes: switch a conversation's active branch, fork a conversation.

Regenerate and edit add branches as part of a turn (`services.turns.begin_turn`); the
tree itself is conversations/tree.py.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Max
from django.utils import timezone

from conversations import tree
from conversations.effects import emit, write
from conversations.events import (
    EventType,
    branch_changed_event,
    conversation_event,
)
from conversations.inputs import ObjectId
from conversations.models import Conversation, ConversationMessage
from conversations.selectors import message_of
from conversations.services.turns import has_queued_messages
from core.errors import TurnInProgress, ValidationFailed


def _locked_idle(conversation: Conversation) -> Conversation:
    """`conversation` row-locked, its agent joined (the events name it); TurnInProgress
    while a turn runs or messages wait for one: a running turn writes at the active
    leaf, which a switch would move under it."""
    locked = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("agent")
        .get(pk=conversation.pk)
    )
    if locked.active_turn_id is not None or has_queued_messages(locked.pk):
        raise TurnInProgress()
    return locked


@write
def switch_branch(*, conversation: Conversation, message_id: ObjectId) -> Conversation:
    """Make the newest leaf under `message_id` (the message itself when it has no
    replies) the conversation's active leaf, and the path to it the active branch.

    Under the conversation's row lock: of two devices switching at once, the second
    waits and switches from the first one's result; both see `conversation.branch_changed`
    events in that order and end on the same leaf. Choosing the branch that is already
    active changes nothing and sends nothing. TurnInProgress (409) while a turn runs."""
    locked = _locked_idle(conversation)
    leaf = tree.newest_leaf_under(locked.pk, message_of(locked, message_id).pk)
    if leaf != locked.active_leaf_id:
        tree.activate_path(locked, leaf)
        locked.save(update_fields=["active_leaf_id", "updated_at"])
        emit(branch_changed_event(locked), user_id=locked.user_id)
        emit(conversation_event(EventType.CONVERSATION_UPDATED, locked), user_id=locked.user_id)
    conversation.active_leaf_id = locked.active_leaf_id
    return locked


def _copy_path_sql() -> str:
    """INSERT ... SELECT of the active branch of one conversation up to a message into
    another: every column as it is, but the conversation, and no tree links yet."""
    table = ConversationMessage._meta.db_table
    reset = {"conversation_id": "%(target)s", "parent_id": "NULL", "on_path": "%(on_path)s"}
    reset["sibling_ids"] = "NULL"
    columns = [f.column for f in ConversationMessage._meta.concrete_fields if not f.primary_key]
    names = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join(reset.get(c, f'"{c}"') for c in columns)
    return (
        f'INSERT INTO "{table}" ({names}) SELECT {values} FROM "{table}" '
        'WHERE "conversation_id" = %(source)s AND "on_path" AND "id" <= %(up_to)s '
        'ORDER BY "id"'
    )


@write
def fork_conversation(*, conversation: Conversation, message_id: ObjectId) -> Conversation:
    """A new conversation of the same user, agent and settings holding a copy of the
    active branch of `conversation` from its first message up to `message_id`.

    A fixed number of statements whatever the length: one INSERT ... SELECT copies the
    messages in order, one UPDATE links them into a chain (`tree.chain_messages`).
    Ratings and tool approvals stay with the originals. The message must be on the
    active branch (400 otherwise); TurnInProgress (409) while a turn runs there (a
    streaming reply would be copied half-written)."""
    locked = _locked_idle(conversation)
    up_to = message_of(locked, message_id)
    if not up_to.on_path:
        raise ValidationFailed.for_field(
            "message_id", "not_on_active_branch", "message_id must be on the active branch."
        )
    now = timezone.now()
    fork = Conversation.objects.create(
        user_id=locked.user_id,
        agent=locked.agent,
        context=locked.context,
        title=locked.title,
        title_source=locked.title_source,
        title_attempted_at=locked.title_attempted_at,
        model=locked.model,
        temperature=locked.temperature,
        project_id=locked.project_id,
        activity_at=now,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _copy_path_sql(),
            {"target": fork.pk, "on_path": True, "source": locked.pk, "up_to": up_to.pk},
        )
        copied = cursor.rowcount
    fork.active_leaf_id = tree.chain_messages(fork.pk)
    fork.message_count = copied
    fork.last_message_at = ConversationMessage.objects.filter(conversation_id=fork.pk).aggregate(
        last=Max("created_at")
    )["last"]
    fork.save(update_fields=["active_leaf_id", "message_count", "last_message_at", "updated_at"])
    emit(conversation_event(EventType.CONVERSATION_CREATED, fork), user_id=locked.user_id)
    return fork
