"""The export's documents, written as streams of byte chunks.

JSON (`conversation_json`): one document per export,

    {"format": "confab.export", "version": 1, "exported_at": "…",
     "conversations": [{<conversation fields>, "messages": [...], "files": [...]}]}

Each message is the stored row's content, the origin's `{"_type", "_value"}` object,
with Confab's columns added beside `_type` and `_value` (`id`, `role`, `text`,
`status`, `turn_id`, `client_message_id`, `model`, `usage`, `error`, `created_at`,
`updated_at`, `feedback`). The content is the database's own JSON text, spliced in
unparsed: what was stored is what leaves. `files` lists the user's files the messages
reference (the documented file object plus `content_url`, the permanent path of its
bytes; `url` is a signed link that expires). This is what
`POST /api/v1/conversations/import/` reads back.

Markdown (`conversation_markdown`): for reading. One section per message; tool calls
with their arguments, tool results fenced, attachments and images as links, ratings
and failures noted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
from django.utils import timezone

from conversations.exports.selectors import files_by_id, message_chunks
from conversations.files.attachments import attachments_of
from conversations.files.links import file_payload
from conversations.files.models import UserFile
from conversations.models import Conversation
from core.errors import ApplicationError, ValidationFailed
from core.rows import StoredJSON, orjson_default
from core.timestamps import iso_timestamp

FORMAT = "confab.export"
VERSION = 1
# Columns written beside `_type` and `_value`, in this order.
MESSAGE_COLUMNS = (
    "id",
    "role",
    "text",
    "status",
    "turn_id",
    "client_message_id",
    "model",
    "usage",
    "error",
    "created_at",
    "updated_at",
    "feedback",
)
FileLink = Callable[[dict[str, Any]], str]
KINDS = ("json", "markdown")


def content_url(file_id: int) -> str:
    """The permanent path of a file's bytes (the owner's token reads it)."""
    return f"/api/v1/files/{int(file_id)}/content/"


def document_head() -> bytes:
    """The document up to its list of conversations (open)."""
    head = {"format": FORMAT, "version": VERSION, "exported_at": iso_timestamp(timezone.now())}
    return orjson.dumps(head)[:-1] + b',"conversations":['


# The keys of `conversation_fields`, in order (what an import reads back, with its
# messages and files).
CONVERSATION_FIELDS = (
    "id",
    "title",
    "agent",
    "context",
    "model",
    "temperature",
    "project",
    "pinned",
    "archived_at",
    "last_message_at",
    "message_count",
    "created_at",
    "updated_at",
)


def conversation_fields(conversation: Conversation) -> dict[str, Any]:
    """A conversation's own fields in an export (its choices as stored: `model` empty and
    `temperature` null mean the agent's)."""
    return {
        "id": conversation.pk,
        "title": conversation.title,
        "agent": conversation.agent.slug,
        "context": conversation.context,
        "model": conversation.model,
        "temperature": conversation.temperature,
        "project": conversation.project_id,
        "pinned": conversation.pinned,
        "archived_at": iso_timestamp(conversation.archived_at),
        "last_message_at": iso_timestamp(conversation.last_message_at),
        "message_count": conversation.message_count,
        "created_at": iso_timestamp(conversation.created_at),
        "updated_at": iso_timestamp(conversation.updated_at),
    }


def export_chunks(conversation: Conversation, *, kind: Any, link: FileLink) -> Iterator[bytes]:
    """One conversation's export, `kind` "json" or "markdown" (anything else: a field
    error naming `format`), chunk by chunk; `link(file)` is where Markdown points a file."""
    if kind == "json":
        return conversation_json(conversation)
    if kind == "markdown":
        return conversation_markdown(conversation, link=link)
    raise ValidationFailed.for_field("format", "invalid", "format is json or markdown.")


def conversation_json(
    conversation: Conversation, *, files: Mapping[int, UserFile] | None = None
) -> Iterator[bytes]:
    """The JSON export document of one conversation, chunk by chunk. `files`: the user's
    files by id when the caller holds them all (the zip), else those named are read."""
    yield document_head()
    yield from conversation_entry(conversation, files=files)
    yield b"]}"


def conversation_entry(
    conversation: Conversation, *, files: Mapping[int, UserFile] | None = None
) -> Iterator[bytes]:
    """One conversation object of the document's `conversations` list, chunk by chunk:
    one chunk per keyset page of messages."""
    yield orjson.dumps(conversation_fields(conversation))[:-1] + b',"messages":['
    file_ids: set[int] = set()
    separator = b""
    for rows, feedback in message_chunks(conversation):
        parts = []
        for row in rows:
            parts.append(message_json(row, feedback.get(row.id)))
            file_ids.update(int(f["id"]) for f in attachments_of(row.content))
        yield separator + b",".join(parts)
        separator = b","
    if files is None:
        files = files_by_id(user_id=conversation.user_id, file_ids=file_ids)
    named = [files[pk] for pk in sorted(file_ids) if pk in files]
    yield b'],"files":' + orjson.dumps([file_entry(file) for file in named]) + b"}"


def file_entry(file: Any) -> dict[str, Any]:
    return {**file_payload(file), "content_url": content_url(file.id)}


def message_json(row: Any, feedback: dict[str, Any] | None) -> bytes:
    """One message: the stored content object with the columns added after its keys."""
    columns = orjson.dumps(
        {
            "id": row.id,
            "role": row.role,
            "text": row.text,
            "status": row.status,
            "turn_id": str(row.turn_id) if row.turn_id else None,
            "client_message_id": row.client_message_id,
            "model": row.model,
            "usage": row.usage,
            "error": row.error,
            "created_at": iso_timestamp(row.created_at),
            "updated_at": iso_timestamp(row.updated_at),
            "feedback": feedback,
        },
        default=orjson_default,
    )
    # `message_chunks` rows: the stored JSON text of an object, spliced in unparsed.
    content = row.content.text.strip()
    return content[:-1].encode() + b"," + columns[1:]


# --- Markdown ---------------------------------------------------------------------------

ROLE_LABELS = {"human": "User", "ai": "Assistant", "tool": "Tool result", "system": "System"}


def conversation_markdown(conversation: Conversation, *, link: FileLink) -> Iterator[bytes]:
    """A readable Markdown rendering of one conversation, chunk by chunk. `link(file)`
    gives the URL an attachment or a tool's file points to."""
    title = conversation.title or f"Conversation {conversation.pk}"
    lines = [
        f"# {_one_line(title)}",
        "",
        f"- Agent: {conversation.agent.slug}",
        f"- Created: {iso_timestamp(conversation.created_at)}",
        f"- Messages: {conversation.message_count}",
        f"- Exported: {iso_timestamp(timezone.now())}",
        "",
    ]
    yield "\n".join(lines).encode()
    for rows, feedback in message_chunks(conversation):
        yield "".join(message_markdown(row, feedback.get(row.id), link) for row in rows).encode()


def message_markdown(row: Any, feedback: dict[str, Any] | None, link: FileLink) -> str:
    """One message as a Markdown section."""
    content = row.content.value() if isinstance(row.content, StoredJSON) else row.content
    value = content.get("_value") if isinstance(content, dict) else None
    value = value if isinstance(value, dict) else {}
    heading = ROLE_LABELS.get(row.role, row.role)
    if row.role == "tool":
        heading += f": `{_one_line(str(value.get('name') or 'tool'))}`"
        if value.get("tool_call_id"):
            heading += f" (call `{_one_line(str(value['tool_call_id']))}`)"
    details = [iso_timestamp(row.created_at) or ""]
    if row.model:
        details.append(row.model)
    if row.status != "complete":
        details.append(row.status)
    out = [f"\n---\n\n### {heading}\n\n*{' · '.join(d for d in details if d)}*\n"]
    if row.role == "tool":
        out.append(_fenced(row.text))
        artifact = value.get("artifact")
        if isinstance(artifact, dict) and artifact.get("kind") in {"table", "json"}:
            out.append(_fenced(json.dumps(artifact, ensure_ascii=False, indent=2), "json"))
    elif row.text:
        out.append(f"\n{row.text}\n")
    out.extend(_image_urls(value))
    for file in attachments_of(content):
        name = _link_text(str(file.get("name") or "file"))
        bang = "!" if str(file.get("content_type", "")).startswith("image/") else ""
        out.append(f"\n{bang}[{name}]({link(file)})\n")
    for call in value.get("tool_calls") or []:
        if isinstance(call, dict):
            name = _one_line(str(call.get("name", "")))
            args = json.dumps(call.get("args"), ensure_ascii=False, indent=2)
            out.append(f"\n**Tool call** `{name}` (`{_one_line(str(call.get('id', '')))}`)\n")
            out.append(_fenced(args, "json"))
    error = row.error.value() if isinstance(row.error, StoredJSON) else row.error
    if isinstance(error, dict) and error:
        out.append(
            f"\n> Failed: {_one_line(str(error.get('message', '')))} ({error.get('code')})\n"
        )
    if feedback:
        comment = f": {_one_line(feedback['comment'])}" if feedback.get("comment") else ""
        out.append(f"\n> Feedback: {feedback['rating']}{comment}\n")
    return "".join(out)


def _image_urls(value: dict[str, Any]) -> list[str]:
    """The origin's image blocks (`image_url`, usually a data URL) as image links."""
    found = []
    blocks = value.get("content")
    for block in blocks if isinstance(blocks, list) else []:
        if isinstance(block, dict) and block.get("type") == "image_url":
            url = block.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            if isinstance(url, str):
                found.append(f"\n![image](<{url}>)\n")
    return found


def _fenced(text: str, language: str = "") -> str:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"\n{fence}{language}\n{text}\n{fence}\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _link_text(text: str) -> str:
    return _one_line(text).replace("[", "(").replace("]", ")")


class ExportTooLarge(ApplicationError):
    """An export asked for as one string (GraphQL) that is larger than it may be."""

    code = "EXPORT_TOO_LARGE"
    type = "invalid_request"
    status = 413
    default_detail = (
        "This conversation is too large to export here: use "
        "GET /api/v1/conversations/{id}/export/ (streamed)."
    )


def export_text(conversation: Conversation, *, kind: str, limit: int) -> str:
    """One conversation's export (`kind` json or markdown) as a string of at most
    `limit` bytes; reading stops, and ExportTooLarge is raised, past it. Markdown links
    files by their permanent path. For surfaces that cannot stream (GraphQL)."""
    chunks = export_chunks(conversation, kind=kind, link=lambda file: content_url(file["id"]))
    parts, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise ExportTooLarge()
        parts.append(chunk)
    return b"".join(parts).decode()
