"""Parsing of what clients send into the typed arguments of selectors and services.

Every surface hands user input (query parameters, GraphQL arguments, websocket frame
fields) through these functions, so a page size, a cursor or an id is checked in one
place and the error names the client's own field.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from core.errors import NotFound, ValidationFailed

MAX_SEARCH_CHARS = 200
MAX_MESSAGE_ID = 2**63 - 1

# An object id as a client sent it: an int from a URL, a string from GraphQL.
ObjectId = int | str


def parse_limit(value: Any, *, field: str = "limit", maximum: int | None = None) -> int:
    """A page size from user input: an integer in 1..`maximum` (CONFAB_MAX_PAGE_SIZE by
    default); CONFAB_DEFAULT_PAGE_SIZE when absent."""
    maximum = maximum or settings.CONFAB_MAX_PAGE_SIZE
    if value is None or value == "":
        return min(settings.CONFAB_DEFAULT_PAGE_SIZE, maximum)
    try:
        limit = int(value)
        if isinstance(value, float | bool) or str(value).strip() != str(limit):
            raise ValueError
    except (TypeError, ValueError):
        raise ValidationFailed.for_field(field, "invalid", f"{field} must be an integer.") from None
    if not 1 <= limit <= maximum:
        raise ValidationFailed.for_field(
            field, "out_of_range", f"{field} must be between 1 and {maximum}."
        )
    return limit


def parse_id_cursor(value: Any, *, field: str, of: str = "message") -> int | None:
    """An id cursor from user input (any id, even of a deleted row); `of` names the
    kind of row in the error (a message by default, a project for the project list)."""
    if value is None or value == "":
        return None
    try:
        message_id = int(value)
        if isinstance(value, float | bool) or str(value).strip() != str(message_id):
            raise ValueError
    except (TypeError, ValueError):
        raise ValidationFailed.for_field(
            field, "invalid", f"{field} must be a {of} id (a positive integer)."
        ) from None
    if not 0 <= message_id <= MAX_MESSAGE_ID:
        raise ValidationFailed.for_field(field, "out_of_range", f"{field} is out of range.")
    return message_id


def parse_object_id(value: ObjectId) -> int:
    """A primary key from user input; anything that is not one is simply not found."""
    try:
        pk = int(value)
    except (TypeError, ValueError):
        raise NotFound() from None
    if not 1 <= pk <= MAX_MESSAGE_ID:
        raise NotFound()
    return pk


def parse_message_id(value: ObjectId) -> int:
    """A message id from user input (an edit, a branch, a fork): anything else is a
    message not found."""
    try:
        return parse_object_id(value)
    except NotFound:
        raise NotFound("Message not found.") from None


@dataclass(frozen=True)
class HistoryRequest:
    """Which page of a conversation's history: the newest (no cursor), the one just
    older than `before`, or the one just newer than `after`; `size` messages at most."""

    size: int
    before: int | None = None
    after: int | None = None


def parse_history_request(*, before: Any, after: Any, limit: Any) -> HistoryRequest:
    """REST's `before` / `after` / `limit` query parameters."""
    size = parse_limit(limit)
    before_id = parse_id_cursor(before, field="before")
    after_id = parse_id_cursor(after, field="after")
    if before_id is not None and after_id is not None:
        raise ValidationFailed.for_field(
            "before", "exclusive", "Use either before or after, not both."
        )
    return HistoryRequest(size=size, before=before_id, after=after_id)


@dataclass(frozen=True)
class ConversationCursor:
    """A position in the conversation list: keyset on (pinned, activity_at, id)
    descending (pinned conversations come first)."""

    activity_at: datetime
    id: int
    pinned: bool = False

    def encode(self) -> str:
        raw = f"{self.activity_at.isoformat()}|{self.id}"
        if self.pinned:
            raw += "|p"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str, *, field: str = "cursor") -> ConversationCursor:
        """The cursor a list page gave out; ValidationFailed naming `field` otherwise."""
        try:
            if len(cursor) > 200:
                raise ValueError
            padded = cursor + "=" * (-len(cursor) % 4)
            activity, _, rest = base64.urlsafe_b64decode(padded).decode().partition("|")
            pk, _, flag = rest.partition("|")
            if flag not in ("", "p"):
                raise ValueError
            return cls(activity_at=datetime.fromisoformat(activity), id=int(pk), pinned=flag == "p")
        except (ValueError, UnicodeDecodeError, binascii.Error):
            raise ValidationFailed.for_field(field, "invalid", f"{field} is not valid.") from None


def parse_conversation_cursor(
    value: str | None, *, field: str = "cursor"
) -> ConversationCursor | None:
    return ConversationCursor.decode(value, field=field) if value else None


_SYNC_CURSOR_PREFIX = "s1:"


def encode_sync_cursor(seq: int) -> str:
    """The opaque cursor of the changes feed after change number `seq`."""
    return base64.urlsafe_b64encode(f"{_SYNC_CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def parse_sync_cursor(value: str | None, *, field: str = "cursor") -> int | None:
    """The change number of a feed cursor; None when absent (a first sync)."""
    if not value:
        return None
    try:
        if len(value) > 64:
            raise ValueError
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        if not raw.startswith(_SYNC_CURSOR_PREFIX):
            raise ValueError
        seq = int(raw.removeprefix(_SYNC_CURSOR_PREFIX))
        if not 0 <= seq <= MAX_MESSAGE_ID:
            raise ValueError
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ValidationFailed.for_field(field, "invalid", f"{field} is not valid.") from None
    return seq


SYNC_DEFAULT_PAGE_SIZE = 100


def parse_sync_request(
    *, cursor: str | None, limit: Any, cursor_field: str = "cursor", limit_field: str = "limit"
) -> tuple[int | None, int]:
    """(change number to continue after, page size) of a changes-feed request."""
    after = parse_sync_cursor(cursor, field=cursor_field)
    size = parse_limit(
        limit or SYNC_DEFAULT_PAGE_SIZE,
        field=limit_field,
        maximum=settings.CONFAB_SYNC_MAX_PAGE_SIZE,
    )
    return after, size


class _NoProject:
    """The `project` list filter's "in no project"."""

    def __repr__(self) -> str:
        return "NO_PROJECT"


NO_PROJECT: Any = _NoProject()
# A project id, NO_PROJECT, or None (any project or none).
ProjectFilter = int | _NoProject | None


def parse_project_filter(value: str | None, *, field: str = "project") -> ProjectFilter:
    """The `project` list filter a client sent: a project id, or `none` (in no project);
    None when absent. An id that is not one of the user's projects matches nothing."""
    if value is None or value == "":
        return None
    if str(value).lower() == "none":
        return NO_PROJECT
    try:
        return parse_object_id(value)
    except NotFound:
        raise ValidationFailed.for_field(
            field, "invalid", f"{field} must be a project id or none."
        ) from None
