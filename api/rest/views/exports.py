"""Export and import (conversations/exports): one conversation as JSON or Markdown, all
of the user's data as a zip (both streamed), and importing an export document."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api.rest.parsers import LimitedJSONParser
from api.rest.serializers import ConversationSerializer, ErrorSerializer, OutputSerializer
from api.rest.streaming import async_chunks
from api.rest.views.base import ConfabView
from conversations import selectors as conversation_selectors
from conversations.exports import archive, documents, imports
from core.timestamps import iso_timestamp

# documents.KINDS as HTTP: media type and file extension.
FORMATS = {"json": "application/json", "markdown": "text/markdown; charset=utf-8"}
EXTENSIONS = {"json": "json", "markdown": "md"}


class _FirstRenderer:
    """Content negotiation that ignores `?format=` (DRF's own format override, which
    would 404 on `markdown`): these views write their own bodies, errors are JSON."""

    def select_renderer(self, request: Any, renderers: list[Any], format_suffix: Any = None):
        return renderers[0], renderers[0].media_type


def streamed(chunks: Any, content_type: str, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(async_chunks(chunks), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


class ConversationExportView(ConfabView):
    content_negotiation_class = _FirstRenderer

    @extend_schema(
        operation_id="conversations_export",
        tags=["export"],
        summary="Export one conversation as JSON (importable) or Markdown (readable)",
        description="Streamed as an attachment. JSON: `{format, version, exported_at, "
        "conversations: [{…conversation, messages, files}]}`, each message the stored "
        '`{"_type", "_value"}` object with Confab\'s columns and the owner\'s `feedback` '
        "beside them; what `POST /api/v1/conversations/import/` reads. Markdown: one "
        "section per message, tool calls and results, attachments and images as links.",
        parameters=[
            OpenApiParameter(
                "format", OpenApiTypes.STR, enum=list(FORMATS), description="Default json."
            )
        ],
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="The export document."
            ),
            (200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR, description="Markdown."),
            (400, "application/json"): OpenApiResponse(
                ErrorSerializer, description="VALIDATION_ERROR: unknown `format`."
            ),
            (404, "application/json"): OpenApiResponse(ErrorSerializer, description="NOT_FOUND."),
        },
    )
    def get(self, request: Request, conversation_id: int) -> StreamingHttpResponse:
        conversation = conversation_selectors.get_conversation(
            user=request.user, conversation_id=conversation_id
        )
        kind = request.query_params.get("format", "json")
        chunks = documents.export_chunks(
            conversation,
            kind=kind,
            link=lambda file: request.build_absolute_uri(documents.content_url(file["id"])),
        )
        name = f"conversation-{conversation.pk}.{EXTENSIONS[kind]}"
        return streamed(chunks, FORMATS[kind], name)


class ExportArchiveView(ConfabView):
    @extend_schema(
        operation_id="export_archive",
        tags=["export"],
        summary="Export all of the user's data as a zip (streamed)",
        description="`confab-export/`: `conversations/<id>.json` (one import document "
        "each) and `.md`, `projects.json`, `feedback.json`, `files.json` and "
        "`files/<id>/<name>` (the bytes), `account.json`, `README.txt`.",
        responses={
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The zip, streamed."
            ),
        },
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        stamp = (iso_timestamp(timezone.now()) or "").replace(":", "")[:15]
        return streamed(
            archive.user_archive(request.user), "application/zip", f"confab-export-{stamp}.zip"
        )


class ImportParser(LimitedJSONParser):
    """Import documents may be larger than other bodies (CONFAB_IMPORT_MAX_BYTES)."""

    def body_limit(self) -> int:
        return settings.CONFAB_IMPORT_MAX_BYTES


class ImportResultSerializer(OutputSerializer):
    conversations = ConversationSerializer(many=True)


class ConversationImportView(ConfabView):
    parser_classes = [ImportParser]

    @extend_schema(
        operation_id="conversations_import",
        tags=["export"],
        summary="Import an export document: new conversations with new ids",
        description="The body is what `GET conversations/{id}/export/?format=json` gives "
        "(or any number of its conversations); a message may be just the origin's "
        '`{"_type", "_value"}` row. The whole document is checked first: a bad one is '
        "400 VALIDATION_ERROR whose `fields` names the path of the first bad field "
        "(`conversations[0].messages[3]._value.content`), and nothing is stored. Files "
        "are not imported: a message may name only the user's own files.",
        request=OpenApiTypes.OBJECT,
        responses={
            201: ImportResultSerializer,
            (400, "application/json"): OpenApiResponse(
                ErrorSerializer, description="VALIDATION_ERROR: the first bad field's path."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        created = imports.import_document(user=request.user, document=request.data)
        conversation_selectors.attach_last_messages(created)
        return Response(
            {"conversations": [ConversationSerializer(c).data for c in created]}, status=201
        )
