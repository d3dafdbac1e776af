"""An uploaded or generated file, owned by one user."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

logger = logging.getLogger(__name__)


class FileKind(models.TextChoices):
    UPLOAD = "upload", "Upload"
    OUTPUT = "output", "Tool output"


class UserFile(models.Model):
    """A file's metadata; the bytes live in Django's default storage under
    `storage_name` (a random name, never a public media path: bytes are served only
    by the owner-checked content endpoint or a signed, expiring URL).

    `text` keeps what the model reads of a PDF or text file (bounded), so building a
    turn never opens those files again.
    """

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="files"
    )
    kind = models.CharField(max_length=16, choices=FileKind.choices, default=FileKind.UPLOAD)
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    storage_name = models.CharField(max_length=300)
    text = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["user", "-id"], name="file_user_newest")]

    def __str__(self) -> str:
        return f"{self.name} ({self.content_type}, {self.size} B)"

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")


@receiver(post_delete, sender=UserFile, dispatch_uid="confab-file-bytes")
def delete_bytes_after_commit(sender: Any, instance: UserFile, **kwargs: Any) -> None:
    """A deleted file's bytes go too, once the deletion committed: also when the row goes
    with its user (a cascade calls no service)."""
    name = instance.storage_name
    transaction.on_commit(lambda: delete_stored_bytes(name), using=kwargs.get("using"))


def delete_stored_bytes(storage_name: str) -> None:
    try:
        default_storage.delete(storage_name)
    except Exception:
        # A leftover object is logged, never a failed request.
        logger.warning("Could not delete stored file %s", storage_name, exc_info=True)
