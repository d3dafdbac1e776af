"""Writes of files: store an upload (checked and normalized), store a tool's output,
delete a file. Bytes go to Django's default storage (local by default; any
django-storages backend, e.g. S3-compatible, through STORAGES: docs/deploy.md)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from conversations.files.models import FileKind, UserFile, delete_stored_bytes
from conversations.files.processing import ProcessedFile, bounded, clean_name, process_upload
from core.errors import FileLimitReached, FileTooLarge, ValidationFailed

EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/svg+xml": ".svg",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/csv": ".csv",
}


def create_file(*, user: Any, data: bytes, name: str) -> UserFile:
    """Store an upload of `user`'s: type from the bytes, images re-encoded, limits checked.

    Raises FileTooLarge (413), UnsupportedFileType (415), InvalidFile / ImageTooLarge
    (422), FileLimitReached (409).
    """
    if len(data) > settings.CONFAB_FILE_MAX_BYTES:
        raise FileTooLarge()
    _check_quota(user.pk)
    processed = process_upload(data, name)
    return _store(user_id=user.pk, processed=processed, kind=FileKind.UPLOAD)


def create_file_from_base64(*, user: Any, value: Any, index: int) -> UserFile:
    """The origin's `images__base64` item (a data URL or bare base64) as a stored file."""
    field = f"images__base64.{index}"
    if not isinstance(value, str) or not value:
        raise ValidationFailed.for_field(field, "invalid", "Each image must be a base64 string.")
    payload = value.partition(",")[2] if value.startswith("data:") else value
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed.for_field(
            field, "invalid", "The image is not valid base64."
        ) from None
    return create_file(user=user, data=data, name=f"image-{index + 1}")


def save_output(*, user_id: int, data: bytes, name: str, content_type: str) -> UserFile:
    """A tool's output (a chart, a file), owned by the user whose turn made it."""
    processed = ProcessedFile(
        data=data,
        content_type=content_type,
        name=clean_name(name),
        text=bounded(data.decode("utf-8", "replace")) if content_type.startswith("text/") else "",
    )
    return _store(user_id=user_id, processed=processed, kind=FileKind.OUTPUT)


def delete_file(*, file: UserFile) -> None:
    """Delete a file and, once that committed, its bytes (`models.delete_bytes_after_commit`).
    Messages that referenced it keep its name and type; its URLs answer 404 from now on."""
    file.delete()


def _check_quota(user_id: int) -> None:
    if UserFile.objects.filter(user_id=user_id).count() >= settings.CONFAB_FILES_PER_USER:
        raise FileLimitReached()


def _store(*, user_id: int, processed: ProcessedFile, kind: str) -> UserFile:
    # A random name: nothing about the file (hash, owner's other files) can be guessed
    # from it, and two users' identical files are two objects.
    extension = EXTENSIONS.get(processed.content_type, ".bin")
    path = f"files/{uuid.uuid4().hex}{extension}"
    stored = default_storage.save(path, ContentFile(processed.data))
    try:
        return UserFile.objects.create(
            user_id=user_id,
            kind=kind,
            name=processed.name,
            content_type=processed.content_type,
            size=len(processed.data),
            sha256=hashlib.sha256(processed.data).hexdigest(),
            width=processed.width,
            height=processed.height,
            storage_name=stored,
            text=processed.text,
        )
    except BaseException:
        delete_stored_bytes(stored)
        raise
