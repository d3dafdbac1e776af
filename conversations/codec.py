"""The message codec: LangChain messages <-> the seed's stored JSON shape.

A stored row's `content` is `{"_type": "<class name>", "_value": {<fields>}}`,
exactly as the origin library wrote it. `_value` is the message's pydantic dump,
so every field (tool calls, usage and response metadata, additional kwargs,
ids, and unknown extra keys such as the seed's `example`) survives a round trip.

Only the message classes below are ever instantiated from stored JSON: a row
cannot name an arbitrary class.

Tool outputs that are not plain text are stored in one JSON-safe form, kept in
the ToolMessage's `artifact` (the text the model sees goes in `content`):

- table:  `{"kind": "table", "columns": [...], "records": [{column: value}, ...]}`
  (the origin's `{"_type": "DataFrame", "_value": {column: {row: value}}}` is
  converted to this);
- file:   `{"kind": "file", "file_id", "name", "mime_type", "size", "sha256"}`, the
  bytes kept as a file of the turn's user (`conversations.files`: the origin's
  base64 `bytes` values and large data URLs become this), never inside the row and
  never on a public path (rows written before files were owned have `path` and
  `url` instead of `file_id`);
- json:   `{"kind": "json", "value": <any JSON value>}`.

A tool that makes a file returns `{"kind": "file_bytes", "name", "mime_type", "data"}`;
`normalize_tool_output` stores it (`save_file`) and keeps the file reference.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    HumanMessageChunk,
    SystemMessage,
    SystemMessageChunk,
    ToolMessage,
    ToolMessageChunk,
)

from conversations.models import MessageRole

MESSAGE_CLASSES: dict[str, type[BaseMessage]] = {
    cls.__name__: cls
    for cls in (
        SystemMessage,
        SystemMessageChunk,
        HumanMessage,
        HumanMessageChunk,
        AIMessage,
        AIMessageChunk,
        ToolMessage,
        ToolMessageChunk,
        ChatMessage,
        FunctionMessage,
    )
}

ROLE_BY_TYPE = {
    "system": MessageRole.SYSTEM,
    "human": MessageRole.HUMAN,
    "ai": MessageRole.AI,
    "tool": MessageRole.TOOL,
    "function": MessageRole.TOOL,
}

# Data URLs longer than this are moved out of the row into a stored file.
INLINE_DATA_URL_LIMIT = 4_096


class CodecError(ValueError):
    """Stored JSON that is not a message this codec may load."""


def encode_message(message: BaseMessage) -> dict[str, Any]:
    """Return the seed's `{"_type", "_value"}` JSON for a LangChain message."""
    type_name = type(message).__name__
    if type_name not in MESSAGE_CLASSES:
        raise CodecError(f"Unsupported message class {type_name}.")
    return {"_type": type_name, "_value": message.model_dump(mode="json")}


def decode_message(data: dict[str, Any]) -> BaseMessage:
    """Rebuild the LangChain message stored as `{"_type", "_value"}`."""
    if not isinstance(data, dict) or not isinstance(data.get("_value"), dict):
        raise CodecError("A stored message is an object with _type and _value.")
    cls = MESSAGE_CLASSES.get(data.get("_type"))
    if cls is None:
        raise CodecError(f"Unknown stored message type {data.get('_type')!r}.")
    try:
        return cls.model_validate(data["_value"])
    except Exception as exc:
        # pydantic raises ValueError, but LangChain's own validators raise what they
        # hit (a ToolMessage without tool_call_id is a KeyError): all of it is bad data.
        raise CodecError(f"Invalid {cls.__name__} value.") from exc


def role_of(message: BaseMessage) -> str:
    """The role column for a message (`system`/`human`/`ai`/`tool`)."""
    role = message.type.removesuffix("MessageChunk").lower()
    if isinstance(message, ChatMessage):
        role = message.role
    return ROLE_BY_TYPE.get(role, MessageRole.HUMAN)


def text_of(message: BaseMessage) -> str:
    """Plain text of a message, for lists and search (list content keeps its text parts)."""
    return message.text


def usage_of(message: BaseMessage) -> dict[str, int] | None:
    """Input/output/total token counts of an AI message, if the provider sent them."""
    usage = getattr(message, "usage_metadata", None)
    if not usage:
        return None
    return {
        key: int(usage.get(key, 0)) for key in ("input_tokens", "output_tokens", "total_tokens")
    }


FileSaver = Callable[[bytes, str, str], dict[str, Any]]


def normalize_tool_output(value: Any, save_file: FileSaver) -> dict[str, Any] | str:
    """Turn a tool's return value into text or one of the documented JSON-safe forms.

    `save_file(data, name, mime_type)` stores bytes and returns a file reference.
    """
    if isinstance(value, str):
        if value.startswith("data:") and len(value) > INLINE_DATA_URL_LIMIT:
            return _data_url_to_file(value, save_file)
        return value
    if isinstance(value, bytes | bytearray):
        return save_file(bytes(value), "output.bin", "application/octet-stream")
    if isinstance(value, dict):
        if value.get("kind") == "file_bytes" and isinstance(value.get("data"), str | bytes):
            data = value["data"]
            raw = data.encode() if isinstance(data, str) else data
            name = str(value.get("name") or "output.bin")
            return save_file(raw, name, str(value.get("mime_type") or "application/octet-stream"))
        if value.get("kind") in {"table", "file", "json"}:
            return value
        if value.get("_type") == "DataFrame" and isinstance(value.get("_value"), dict):
            return table_from_columns(value["_value"])
        if value.get("_type") == "bytes" and isinstance(value.get("_value"), str):
            data = base64.b64decode(value["_value"])
            return save_file(data, "output.bin", "application/octet-stream")
    if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
        return table_from_records(value)
    return {"kind": "json", "value": json.loads(json.dumps(value, default=str))}


def table_from_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    columns: list[str] = []
    for record in records:
        columns.extend(str(key) for key in record if str(key) not in columns)
    rows = [{str(k): _json_safe(v) for k, v in record.items()} for record in records]
    return {"kind": "table", "columns": columns, "records": rows}


def table_from_columns(by_column: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Convert pandas' `to_dict()` orientation ({column: {row: value}}) to records."""
    columns = [str(column) for column in by_column]
    row_keys: list[str] = []
    for cells in by_column.values():
        row_keys.extend(str(key) for key in cells if str(key) not in row_keys)
    records = [
        {
            str(column): _json_safe({str(k): v for k, v in cells.items()}.get(row_key))
            for column, cells in by_column.items()
        }
        for row_key in row_keys
    ]
    return {"kind": "table", "columns": columns, "records": records}


def tool_output_text(output: dict[str, Any] | str) -> str:
    """The text the model sees for a tool output."""
    if isinstance(output, str):
        return output
    if output.get("kind") == "file":
        keys = ("file_id", "name", "mime_type", "size")
        return json.dumps({k: output[k] for k in keys if k in output})
    return json.dumps(output, ensure_ascii=False)


def _data_url_to_file(data_url: str, save_file: FileSaver) -> dict[str, Any]:
    header, _, payload = data_url.partition(",")
    mime_type = header.removeprefix("data:").split(";")[0] or "application/octet-stream"
    data = base64.b64decode(payload) if ";base64" in header else payload.encode()
    extension = mime_type.rsplit("/", 1)[-1]
    return save_file(data, f"output.{extension}", mime_type)


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
