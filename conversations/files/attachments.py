"""Attachments: how a human message references files, how every surface shows them,
and what the model is sent for them.

A human message with attachments has LangChain list content: its text block, then
one block per file, in LangChain's standard shape with Confab's reference kept in it:

    {"type": "image" | "file", "file_id": "confab:<id>", "mime_type": "…",
     "confab_file": {"id", "name", "content_type", "size", "sha256", "width",
                     "height", "created_at"}}

The row keeps only the reference, never the bytes. The message payload lists the
files as `attachments` (the file object, with a freshly signed `url`), read from the
stored content alone: a history page reads no file row and no bytes. A tool
message's file artifact (`{"kind": "file", "file_id", …}`) is listed the same way.

Before a turn goes to the provider, each block becomes what the model can read
(`model_messages`): an image, its bytes as a standard base64 image block (each
file read from storage once per turn); a text, Markdown or CSV file, or a PDF, the
text stored when it was uploaded (bounded by CONFAB_FILE_TEXT_MAX_CHARS). Rows of the
origin, whose human messages carry `image_url` blocks with base64 data URLs, are
sent as they are.
"""

from __future__ import annotations

import base64
import json
from typing import Any, NamedTuple

from django.conf import settings
from django.core.files.storage import default_storage
from langchain_core.messages import BaseMessage, HumanMessage

from conversations.files.links import snapshot, with_url
from conversations.files.models import UserFile
from conversations.files.selectors import user_files
from conversations.inputs import parse_object_id
from core.errors import ValidationFailed

REFERENCE_KEY = "confab_file"
# Present in the stored JSON of every message that has attachments: a page's rows
# without it are not parsed at all.
_MARKERS = ('"confab_file"', '"file_id"')


def parse_attachment_ids(value: Any) -> list[int]:
    """`attachments` from a client: a list of file ids, at most CONFAB_FILES_PER_MESSAGE."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ValidationFailed.for_field(
            "attachments", "invalid", "attachments must be a list of file ids."
        )
    limit = settings.CONFAB_FILES_PER_MESSAGE
    if len(value) > limit:
        raise ValidationFailed.for_field(
            "attachments", "too_many", f"A message takes at most {limit} attachments."
        )
    ids: list[int] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise ValidationFailed.for_field(
                "attachments", "invalid", "attachments must be a list of file ids."
            )
        pk = parse_object_id(item)
        if pk not in ids:
            ids.append(pk)
    return ids


class AttachedMessage(NamedTuple):
    """A turn's human message and the files stored for it from `images_base64` (what
    `discard_images` removes if the turn is refused after all)."""

    message: HumanMessage
    stored_images: list[UserFile]


def human_message(
    *, user: Any, text: str, file_ids: list[int], images_base64: Any = None
) -> AttachedMessage:
    """The human message of a turn: plain text, or a text block and one block per file.

    `file_ids` must be the user's files (NotFound otherwise: someone else's file is
    "not found"); `images_base64` (the origin's websocket form) are stored as files
    first, none of them if one is refused. Runs in a thread: it reads the files and may
    store images.
    """
    files = user_files(user=user, file_ids=file_ids) if file_ids else []
    images = _store_images(user, images_base64, len(files)) if images_base64 else []
    files += images
    if not files:
        return AttachedMessage(HumanMessage(content=text), [])
    blocks: list[str | dict[str, Any]] = []
    if text:
        blocks.append({"type": "text", "text": text})
    blocks.extend(file_block(file) for file in files)
    return AttachedMessage(HumanMessage(content=blocks), images)


def _store_images(user: Any, images_base64: Any, attached: int) -> list[UserFile]:
    from conversations.files import services

    if not isinstance(images_base64, list):
        raise ValidationFailed.for_field(
            "images__base64", "invalid", "images__base64 must be a list of base64 strings."
        )
    if attached + len(images_base64) > settings.CONFAB_FILES_PER_MESSAGE:
        raise ValidationFailed.for_field(
            "attachments",
            "too_many",
            f"A message takes at most {settings.CONFAB_FILES_PER_MESSAGE} attachments.",
        )
    stored: list[UserFile] = []
    try:
        for index, value in enumerate(images_base64):
            stored.append(services.create_file_from_base64(user=user, value=value, index=index))
    except BaseException:
        discard_images(stored)
        raise
    return stored


def discard_images(files: list[UserFile]) -> None:
    """Delete files stored for a turn that was then refused (a later image was bad, the
    quota was spent, another turn held the conversation): a refusal leaves nothing."""
    from conversations.files import services

    for file in files:
        services.delete_file(file=file)


def file_block(file: UserFile) -> dict[str, Any]:
    """The content block that references `file` in a stored message."""
    return {
        "type": "image" if file.is_image else "file",
        "file_id": f"confab:{file.id}",
        "mime_type": file.content_type,
        REFERENCE_KEY: snapshot(file),
    }


def attachments_of(content: Any) -> list[dict[str, Any]]:
    """The file objects a stored message references (`content` as stored: a dict, or
    a history page's `StoredJSON` text, parsed only when it names a file)."""
    text = getattr(content, "text", None)
    if isinstance(text, str):
        if not any(marker in text for marker in _MARKERS):
            return []
        content = json.loads(text)
    if not isinstance(content, dict) or not isinstance(content.get("_value"), dict):
        return []
    value = content["_value"]
    found: list[dict[str, Any]] = []
    blocks = value.get("content")
    if isinstance(blocks, list):
        for block in blocks:
            if isinstance(block, dict) and isinstance(block.get(REFERENCE_KEY), dict):
                found.append(with_url(block[REFERENCE_KEY]))
    artifact = value.get("artifact")
    if isinstance(artifact, dict) and artifact.get("kind") == "file" and "file_id" in artifact:
        found.append(
            with_url(
                {
                    "id": artifact["file_id"],
                    "name": artifact.get("name", ""),
                    "content_type": artifact.get("mime_type", ""),
                    "size": artifact.get("size", 0),
                    "sha256": artifact.get("sha256", ""),
                }
            )
        )
    return found


def has_file_blocks(messages: list[BaseMessage]) -> bool:
    """Whether any message refers to a stored file (`model_messages` has work to do);
    no I/O, so the event loop can ask before a thread hop."""
    return any(True for message in messages for _ in _file_blocks(message))


def model_messages(messages: list[BaseMessage]) -> list[BaseMessage]:
    """`messages` with every file block replaced by what the model can read. Reads the
    referenced files in one query and each image's bytes once. Runs in a thread."""
    ids = [block[REFERENCE_KEY]["id"] for message in messages for block in _file_blocks(message)]
    if not ids:
        return messages
    files = {f.pk: f for f in UserFile.objects.filter(pk__in=set(ids))}
    result: list[BaseMessage] = []
    for message in messages:
        if not any(True for _ in _file_blocks(message)):
            result.append(message)
            continue
        blocks: list[str | dict[str, Any]] = []
        for block in message.content:
            if isinstance(block, dict) and isinstance(block.get(REFERENCE_KEY), dict):
                blocks.append(_model_block(block[REFERENCE_KEY], files))
            else:
                blocks.append(block)
        result.append(message.model_copy(update={"content": blocks}))
    return result


def _file_blocks(message: BaseMessage) -> Any:
    if isinstance(message, HumanMessage) and isinstance(message.content, list):
        for block in message.content:
            if isinstance(block, dict) and isinstance(block.get(REFERENCE_KEY), dict):
                yield block


def _model_block(reference: dict[str, Any], files: dict[int, UserFile]) -> dict[str, Any]:
    name = str(reference.get("name", "file"))
    file = files.get(reference.get("id"))
    if file is None:
        return {"type": "text", "text": f"[Attachment {name}: deleted]"}
    if file.is_image:
        with default_storage.open(file.storage_name, "rb") as stored:
            data = stored.read()
        return {
            "type": "image",
            "base64": base64.b64encode(data).decode("ascii"),
            "mime_type": file.content_type,
        }
    return {
        "type": "text",
        "text": f'<file name="{name}" type="{file.content_type}">\n{file.text}\n</file>',
    }
