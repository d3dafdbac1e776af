"""`/api/v1/files/`: upload a file, read or delete one, fetch its bytes (with the token,
or through a signed, expiring URL for `<img>` tags)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage
from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from api.rest.serializers import ErrorSerializer, FileSerializer
from api.rest.uploads import UploadParser
from api.rest.views.base import ConfabView
from conversations.files import links, selectors, services
from conversations.files.models import UserFile
from core.errors import NotFound, ValidationFailed

# What the content endpoints may answer with: the stored types.
SERVED_TYPES = (
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/svg+xml",
    "application/pdf",
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/octet-stream",
)
CONTENT_RESPONSES = {(200, media): OpenApiTypes.BINARY for media in SERVED_TYPES}
UPLOAD_ERRORS = {
    (400, "application/json"): OpenApiResponse(
        ErrorSerializer, description="VALIDATION_ERROR: no `file` field, or more than one."
    ),
    (409, "application/json"): OpenApiResponse(
        ErrorSerializer, description="FILE_LIMIT_REACHED: CONFAB_FILES_PER_USER files stored."
    ),
    (413, "application/json"): OpenApiResponse(
        ErrorSerializer, description="FILE_TOO_LARGE: beyond CONFAB_FILE_MAX_BYTES."
    ),
    (415, "application/json"): OpenApiResponse(
        ErrorSerializer,
        description="UNSUPPORTED_FILE_TYPE: the bytes are none of PNG, JPEG, WebP, GIF, PDF, "
        "UTF-8 text, or read as two types at once (a polyglot).",
    ),
    (422, "application/json"): OpenApiResponse(
        ErrorSerializer,
        description="INVALID_FILE (an image or PDF that does not decode), IMAGE_TOO_LARGE "
        "(more pixels than CONFAB_IMAGE_MAX_PIXELS: refused before decoding).",
    ),
}
# Served bytes never run as a page of this origin (an SVG chart opened directly, a text
# file a browser might sniff as HTML).
CONTENT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
}


CHUNK_BYTES = 64 * 1024


async def _chunks(stored: Any) -> AsyncIterator[bytes]:
    """A stored file's bytes in chunks, each read in a thread: under ASGI a sync
    iterator would be read whole into memory before the first byte is sent."""
    read = sync_to_async(stored.read, thread_sensitive=False)
    try:
        while chunk := await read(CHUNK_BYTES):
            yield chunk
    finally:
        await sync_to_async(stored.close, thread_sensitive=False)()


def content_response(request: Request, file: UserFile, *, cache_seconds: int) -> HttpResponse:
    """The file's bytes, streamed from storage, with headers that keep them inert."""
    try:
        stored = default_storage.open(file.storage_name, "rb")
    except FileNotFoundError:
        raise NotFound() from None
    inline = file.is_image
    response = FileResponse(
        stored,
        content_type=file.content_type,
        as_attachment=not inline,
        filename=file.name,
    )
    if isinstance(request._request, ASGIRequest):
        # FileResponse set the headers (length, disposition); stream without buffering.
        response.streaming_content = _chunks(stored)
    for name, value in CONTENT_HEADERS.items():
        response[name] = value
    response["Cache-Control"] = f"private, max-age={cache_seconds}"
    return response


class FileListView(ConfabView):
    parser_classes = [UploadParser]

    @extend_schema(
        operation_id="files_create",
        tags=["files"],
        summary="Upload a file (multipart, field `file`)",
        description="The type comes from the bytes (PNG, JPEG, WebP, GIF, PDF, text, "
        "Markdown, CSV). Images are re-encoded: metadata (EXIF, GPS) removed, the longest "
        "side at most CONFAB_IMAGE_MAX_SIDE. Send the returned `id` in a message's "
        "`attachments`.",
        request={
            "multipart/form-data": inline_serializer(
                "FileUpload", {"file": serializers.FileField()}
            )
        },
        responses={201: FileSerializer, **UPLOAD_ERRORS},
    )
    def post(self, request: Request) -> Response:
        uploads = request.FILES.getlist("file")
        if len(uploads) != 1 or set(request.FILES) != {"file"}:
            raise ValidationFailed.for_field(
                "file", "required", "Send exactly one file, in the multipart field `file`."
            )
        upload = uploads[0]
        file = services.create_file(user=request.user, data=upload.read(), name=upload.name)
        return Response(links.file_payload(file), status=201)

    @extend_schema(
        operation_id="files_list",
        tags=["files"],
        summary="The user's newest files (at most 100)",
        responses={200: inline_serializer("FileList", {"results": FileSerializer(many=True)})},
    )
    def get(self, request: Request) -> Response:
        files = selectors.newest_files(user=request.user, limit=100)
        return Response({"results": [links.file_payload(file) for file in files]})


class FileDetailView(ConfabView):
    @extend_schema(
        operation_id="files_retrieve",
        tags=["files"],
        summary="One file's metadata (with a fresh signed `url`)",
        responses={200: FileSerializer},
    )
    def get(self, request: Request, file_id: int) -> Response:
        file = selectors.get_file(user=request.user, file_id=file_id)
        return Response(links.file_payload(file))

    @extend_schema(
        operation_id="files_destroy",
        tags=["files"],
        summary="Delete a file and its bytes",
        description="Messages that attached it keep its name; its URLs answer 404.",
        responses={204: None},
    )
    def delete(self, request: Request, file_id: int) -> Response:
        file = selectors.get_file(user=request.user, file_id=file_id)
        services.delete_file(file=file)
        return Response(status=204)


class FileContentView(ConfabView):
    @extend_schema(
        operation_id="files_content",
        tags=["files"],
        summary="The file's bytes (owner only)",
        description="Images inline, other files as an attachment; `nosniff` and a sandboxing "
        "Content-Security-Policy keep them inert.",
        responses=CONTENT_RESPONSES,
    )
    def get(self, request: Request, file_id: int) -> Any:
        file = selectors.get_file(user=request.user, file_id=file_id)
        return content_response(request, file, cache_seconds=0)


class SignedFileView(ConfabView):
    # The signature is the authorization: `<img src>` sends no token.
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        operation_id="files_signed_content",
        tags=["files"],
        summary="The file's bytes through a signed URL (a file object's `url`)",
        description="No token: the URL itself is the permission, until it expires "
        "(CONFAB_FILE_URL_TTL). A damaged, expired or deleted file's URL is 404.",
        auth=[],
        parameters=[
            OpenApiParameter(
                "token",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                pattern=r"^[A-Za-z0-9_:-]{1,200}$",
                description="The signed part of a file object's `url`.",
            )
        ],
        responses=CONTENT_RESPONSES,
    )
    def get(self, request: Request, token: str) -> Any:
        file_id = links.file_from_token(token)
        if file_id is None:
            raise NotFound()
        file = selectors.get_file_by_id(file_id)
        return content_response(request, file, cache_seconds=links.signed_cache_seconds())
