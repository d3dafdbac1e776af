"""Multipart uploads: the body limit of the upload path, and one file's bytes capped
while they are read (413 `FILE_TOO_LARGE`, before the rest is read)."""

from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from rest_framework.parsers import MultiPartParser

from core.body_limit import body_limit
from core.errors import FileTooLarge
from core.text_input import unsafe_text_error, unsafe_text_path


class CappedUploadHandler(FileUploadHandler):
    """Keeps an upload in memory up to CONFAB_FILE_MAX_BYTES and refuses it beyond.

    In memory, not a temporary file: the file is decoded (images re-encoded) right
    away, and the cap bounds what one request holds.
    """

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.buffer = io.BytesIO()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if start + len(raw_data) > settings.CONFAB_FILE_MAX_BYTES:
            raise FileTooLarge()
        self.buffer.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> InMemoryUploadedFile:
        self.buffer.seek(0)
        return InMemoryUploadedFile(
            file=self.buffer,
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=file_size,
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )


class UploadParser(MultiPartParser):
    """multipart/form-data within the upload path's body limit (`core.body_limit`: the
    ASGI layer enforces it on a live server; this also holds under WSGI and test clients)."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: dict[str, Any] | None = None,
    ) -> Any:
        request = (parser_context or {}).get("request")
        meta = getattr(request, "META", {})
        try:
            declared = int(meta.get("CONTENT_LENGTH") or 0)
        except (TypeError, ValueError):
            declared = 0
        limit = body_limit(getattr(request, "path", ""))
        if limit is not None and declared > limit:
            raise FileTooLarge()
        if request is not None:
            request.upload_handlers = [CappedUploadHandler(request)]
        parsed = super().parse(stream, media_type, parser_context)
        # Form fields and file names are text (file contents are not): NUL characters
        # and lone surrogates are refused here, where multipart is parsed.
        fields = dict(parsed.data.lists())
        fields.update({name: [f.name for f in files] for name, files in parsed.files.lists()})
        if (path := unsafe_text_path(fields)) is not None:
            raise unsafe_text_error(path.rsplit(".", 1)[0])  # the field, not its index
        return parsed
