"""The zip of all a user's data, written as a stream: no part of it is held whole.

Python's `zipfile` writes to a sink that only has `write` (no `seek`/`tell`), so it
puts each entry's sizes and CRC in a data descriptor after the entry; the sink's bytes
are handed on as they come (`zip_stream`). Entries are deflated and Zip64 from the
start (an entry's size is not known before it is written).

Layout (`archive_entries`):

    confab-export/README.txt
    confab-export/account.json          who and when
    confab-export/projects.json         the user's projects
    confab-export/feedback.json         every rating the user gave, with its message
    confab-export/files.json            the user's files (metadata)
    confab-export/files/<id>/<name>     each file's bytes
    confab-export/conversations/<id>.json   one import document per conversation
    confab-export/conversations/<id>.md     the same conversation, for reading

A conversation's JSON is exactly `GET conversations/{id}/export/?format=json`; its
Markdown links attachments to the file bytes inside the zip.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from django.core.files.storage import default_storage
from django.utils import timezone

from conversations.exports import documents, selectors
from conversations.files.links import snapshot
from conversations.payloads import project_payload
from core.timestamps import iso_timestamp

ROOT = "confab-export"
# Bytes gathered before they are handed on, and read from storage at a time.
FLUSH_BYTES = 64 * 1024
READ_BYTES = 256 * 1024

README = """Confab export

conversations/<id>.json  one conversation per file, in the format
                         POST /api/v1/conversations/import/ reads back
conversations/<id>.md    the same conversation, for reading
files/<id>/<name>        the bytes of your files; files.json lists them
projects.json            your projects
feedback.json            your ratings of replies
"""


class _Sink:
    """A write-only stream: what zipfile writes waits here until it is taken."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts, self.size = [], 0
        return data


def zip_stream(entries: Iterable[tuple[str, Iterable[bytes]]]) -> Iterator[bytes]:
    """A zip of `entries` ((name, chunks of its bytes)), as chunks of about
    FLUSH_BYTES: each entry is compressed as its chunks arrive."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, chunks in entries:
            info = zipfile.ZipInfo(name, date_time=timezone.now().timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as entry:
                for chunk in chunks:
                    entry.write(chunk)
                    if sink.size >= FLUSH_BYTES:
                        yield sink.take()
            if sink.size >= FLUSH_BYTES:
                yield sink.take()
    yield sink.take()


def user_archive(user: Any) -> Iterator[bytes]:
    """All of `user`'s data as a streamed zip."""
    return zip_stream(archive_entries(user))


def archive_entries(user: Any) -> Iterator[tuple[str, Iterable[bytes]]]:
    """The zip's entries, each read when it is written."""
    yield f"{ROOT}/README.txt", [README.encode()]
    account = {
        "format": documents.FORMAT,
        "version": documents.VERSION,
        "username": user.get_username(),
        "exported_at": iso_timestamp(timezone.now()),
    }
    yield f"{ROOT}/account.json", [orjson.dumps(account)]
    yield (
        f"{ROOT}/projects.json",
        _json_list(project_payload(project) for project in selectors.user_projects(user)),
    )
    yield (
        f"{ROOT}/feedback.json",
        _json_list(
            {
                "conversation": row.message.conversation_id,
                "message": row.message_id,
                "rating": row.rating,
                "comment": row.comment,
                "created_at": iso_timestamp(row.created_at),
                "updated_at": iso_timestamp(row.updated_at),
            }
            for row in selectors.user_feedback(user)
        ),
    )
    files = selectors.user_files(user)
    paths = {file.id: f"files/{file.id}/{safe_name(file.name)}" for file in files.values()}
    yield (
        f"{ROOT}/files.json",
        _json_list({**snapshot(file), "path": paths[file.id]} for file in files.values()),
    )
    for file in files.values():
        yield f"{ROOT}/{paths[file.id]}", _stored_bytes(file.storage_name)

    def link(file: dict[str, Any]) -> str:
        # From conversations/<id>.md to the bytes in this zip; a deleted file keeps
        # the permanent path (it answers 404).
        path = paths.get(int(file["id"]))
        return f"../{path}" if path else documents.content_url(file["id"])

    for conversation in selectors.conversations_to_export(user):
        yield (
            f"{ROOT}/conversations/{conversation.pk}.json",
            documents.conversation_json(conversation, files=files),
        )
        yield (
            f"{ROOT}/conversations/{conversation.pk}.md",
            documents.conversation_markdown(conversation, link=link),
        )


def _json_list(items: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    yield b"["
    separator = b""
    for item in items:
        yield separator + orjson.dumps(item)
        separator = b","
    yield b"]"


def _stored_bytes(storage_name: str) -> Iterator[bytes]:
    try:
        stored = default_storage.open(storage_name, "rb")
    except OSError:
        return  # bytes lost from storage: an empty entry, files.json still lists it
    with stored:
        while chunk := stored.read(READ_BYTES):
            yield chunk


def safe_name(name: str) -> str:
    """A file name usable as one zip path segment."""
    cleaned = re.sub(r"[\x00-\x1f/\\:]+", "_", name).strip(" .")
    return cleaned[:120] or "file"
