"""An uploaded or generated file, owned by one user."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


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
