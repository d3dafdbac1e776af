"""Files: uploads and tool outputs, owned by a user, bytes in Django's storage.

- `models.UserFile`: metadata; bytes under a random storage name.
- `processing`: type from the bytes, Pillow re-encoding, limits, PDF text.
- `services` / `selectors`: writes and owner-scoped reads.
- `links`: signed, expiring URLs and the file object of every surface.
- `attachments`: a human message's file blocks, and what the model is sent for them.

Tool outputs (charts, generated files) are owned files too: the turn engine names
the owner (`output_owner`) while its tools run, and `save_output_file` stores their
bytes as that user's file. Nothing is ever served from a public media path.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

# The user whose turn is running (set by the turn engine in the turn's own context,
# which tool calls inherit).
output_owner: ContextVar[int | None] = ContextVar("confab_output_owner", default=None)


def save_output_file(data: bytes, name: str, mime_type: str) -> dict[str, Any]:
    """Store a tool's output bytes as a file of the turn's user; return the codec's file
    reference (`{"kind": "file", "file_id", "name", "mime_type", "size", "sha256"}`).

    The reference holds no URL: a signed one is added whenever the message is shown.
    """
    from conversations.files import services

    owner = output_owner.get()
    if owner is None:
        raise LookupError("A tool output file needs the turn's user (files.output_owner).")
    file = services.save_output(user_id=owner, data=data, name=name, content_type=mime_type)
    return {
        "kind": "file",
        "file_id": file.id,
        "name": file.name,
        "mime_type": file.content_type,
        "size": file.size,
        "sha256": file.sha256,
    }
