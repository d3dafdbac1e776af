"""Reads of an export: the user's conversations, their messages in keyset chunks, the
files they reference, projects and feedback. Everything is scoped to the owner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from conversations import history_pages
from conversations.feedback.models import MessageFeedback
from conversations.feedback.selectors import feedback_by_message
from conversations.files.models import UserFile
from conversations.models import Conversation
from conversations.projects.models import Project

# Messages read per query: bounded memory whatever the conversation's length.
CHUNK_SIZE = 500


def conversations_to_export(user: Any, *, size: int = 200) -> Iterator[Conversation]:
    """Every conversation of the user, oldest first, read in id-keyset chunks (no cursor
    stays open while their messages are read)."""
    after = 0
    while True:
        chunk = list(
            Conversation.objects.filter(user_id=user.pk, id__gt=after)
            .select_related("agent")
            .order_by("id")[:size]
        )
        yield from chunk
        if len(chunk) < size:
            return
        after = chunk[-1].pk


def message_chunks(
    conversation: Conversation, *, size: int = CHUNK_SIZE
) -> Iterator[tuple[list[history_pages.MessageRow], dict[int, dict[str, Any]]]]:
    """The conversation's messages oldest first, `size` at a time, each chunk with its
    owner's ratings ({message id: feedback payload}). Rows are `MessageRow`s: their
    JSON columns stay the database's text (`StoredJSON`), written out unparsed, so a
    message's content leaves exactly as stored. One indexed keyset query per chunk
    (`history_pages`, the same statement as a history page `after=`)."""
    cursor = 0
    while True:
        rows, _ = history_pages.read_page(
            conversation_id=conversation.pk,
            owner_id=conversation.user_id,
            shape=history_pages.AFTER,
            cursor=cursor,
            size=size,
            as_rows=True,
        )
        more, rows = len(rows) > size, rows[:size]
        if rows:
            yield rows, feedback_by_message(rows)
        if not more:
            return
        cursor = rows[-1].id


def files_by_id(*, user_id: int, file_ids: set[int]) -> dict[int, UserFile]:
    """The user's files among `file_ids` (a message may name a deleted file), by id."""
    if not file_ids:
        return {}
    return {file.pk: file for file in _exported_files(user_id).filter(pk__in=file_ids)}


def user_files(user: Any) -> dict[int, UserFile]:
    """All the user's files, by id (their metadata: the extracted text stays behind)."""
    return {file.pk: file for file in _exported_files(user.pk)}


def _exported_files(user_id: int) -> Any:
    return UserFile.objects.filter(user_id=user_id).defer("text").order_by("id")


def user_projects(user: Any) -> Iterator[Project]:
    return (
        Project.objects.filter(user_id=user.pk)
        .select_related("default_agent")
        .order_by("id")
        .iterator(chunk_size=200)
    )


def user_feedback(user: Any) -> Iterator[MessageFeedback]:
    """The user's ratings of messages in their own conversations."""
    return (
        MessageFeedback.objects.filter(user_id=user.pk, message__conversation__user_id=user.pk)
        .select_related("message")
        .only(
            "rating",
            "comment",
            "created_at",
            "updated_at",
            "message__id",
            "message__conversation_id",
        )
        .order_by("id")
        .iterator(chunk_size=500)
    )
