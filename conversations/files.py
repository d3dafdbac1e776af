"""Binary outputs (images, files) live in Django's storage, never inside JSON rows."""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage


def save_output_file(data: bytes, name: str, mime_type: str) -> dict[str, Any]:
    """Store bytes under a content-addressed name; return the codec's file reference."""
    digest = hashlib.sha256(data).hexdigest()
    extension = name.rsplit(".", 1)[-1] if "." in name else "bin"
    path = f"tool-outputs/{digest[:2]}/{digest}.{extension}"
    if not default_storage.exists(path):
        path = default_storage.save(path, ContentFile(data))
    return {
        "kind": "file",
        "name": name,
        "path": path,
        "url": default_storage.url(path),
        "mime_type": mime_type,
        "size": len(data),
        "sha256": digest,
    }
