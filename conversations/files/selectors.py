"""Reads of files: always scoped to their owner (someone else's file is "not found")."""

from __future__ import annotations

from typing import Any

from conversations.files.models import UserFile
from conversations.inputs import parse_object_id
from core.errors import NotFound


def get_file(*, user: Any, file_id: Any) -> UserFile:
    """The user's file `file_id`; NotFound when missing or not theirs."""
    pk = parse_object_id(file_id)
    file = UserFile.objects.filter(pk=pk, user_id=user.pk).first()
    if file is None:
        raise NotFound()
    return file


def get_file_by_id(file_id: int) -> UserFile:
    """A file named by a verified signed URL (the signature is the authorization)."""
    file = UserFile.objects.filter(pk=file_id).first()
    if file is None:
        raise NotFound()
    return file


def user_files(*, user: Any, file_ids: list[int]) -> list[UserFile]:
    """The user's files `file_ids`, in that order; NotFound if any is missing or not
    theirs (one query)."""
    found = {f.pk: f for f in UserFile.objects.filter(pk__in=file_ids, user_id=user.pk)}
    if len(found) != len(set(file_ids)):
        raise NotFound("Attachment not found.")
    return [found[pk] for pk in file_ids]


def newest_files(*, user: Any, limit: int) -> list[UserFile]:
    return list(UserFile.objects.filter(user_id=user.pk).order_by("-id")[:limit])
