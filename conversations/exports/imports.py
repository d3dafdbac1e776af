"""The import service: an export document (or the origin's rows) back into conversations.

`import_document` checks the whole document before it writes anything, and reports
the first bad field by its path in the document (`conversations[0].messages[3]._value
.content`), as a ValidationFailed whose `fields` has that one path. Then everything is
written in one transaction (`@write`): new conversations, their messages in bulk, the
ratings; nothing of a bad document is stored.

What an import keeps and what it gives anew:
- kept: each message's content (`_type`, `_value`) exactly as sent, `text`, `status`,
  `client_message_id`, `model`, `usage`, `error`, `created_at`, the rating; the
  conversation's title, agent, context, model and temperature choice, project, pin,
  archive time and creation time;
- new: every id (conversations, messages, `turn_id`s, consistently within a
  document), `updated_at`; `message_count` and `last_message_at` are counted from the
  messages;
- a message only `_type` and `_value` (an origin row, as in shared/seed/): role, text
  and usage come from the LangChain message, status `complete`, created now;
- never live: a `streaming` message is stored `failed`/`interrupted` (what recovery
  makes of a turn whose worker stopped), a `queued` one `cancelled` (an import starts
  no turn);
- references must be the importer's: the agent (an active slug), the project (one of
  theirs, or null), and every file a message names (`confab_file.id`, a
  `"confab:<id>"` `file_id`, a tool's file artifact): another user's or a missing file
  is `not_found` at its path. Files are not imported: upload them first (the zip holds
  their bytes).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pydantic
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from conversations.codec import (
    MESSAGE_CLASSES,
    CodecError,
    decode_message,
    role_of,
    text_of,
    usage_of,
)
from conversations.effects import emit, record_message_change, write
from conversations.events import EventType, conversation_event
from conversations.exports.documents import (
    CONVERSATION_FIELDS,
    FORMAT,
    MESSAGE_COLUMNS,
    VERSION,
)
from conversations.feedback.models import MessageFeedback, Rating
from conversations.feedback.services import MAX_COMMENT_CHARS
from conversations.files.attachments import REFERENCE_KEY
from conversations.files.models import UserFile
from conversations.models import (
    Agent,
    Conversation,
    ConversationMessage,
    MessageRole,
    MessageStatus,
)
from conversations.projects.models import Project
from conversations.services.conversations import (
    MAX_TITLE_CHARS,
    validate_context,
    validate_model_choice,
    validate_temperature,
)
from conversations.services.turns import INTERRUPTED_ERROR
from conversations.tree import chain_messages
from core.errors import ValidationFailed

MAX_CONVERSATIONS = 1_000
MAX_MESSAGES = 100_000
MAX_CLIENT_MESSAGE_ID_CHARS = 100
MAX_MODEL_CHARS = 100
BATCH_SIZE = 1_000

DOCUMENT_KEYS = {"format", "version", "exported_at", "conversations"}
# What an export writes; of it, `id`, `last_message_at`, `message_count`, `updated_at`
# and `files` are not read back: ids are new, counts are counted, files are the user's
# own (they must exist already).
CONVERSATION_KEYS = {*CONVERSATION_FIELDS, "messages", "files"}
MESSAGE_KEYS = {"_type", "_value", *MESSAGE_COLUMNS}
STATUS_ON_IMPORT = {
    MessageStatus.COMPLETE: MessageStatus.COMPLETE,
    MessageStatus.FAILED: MessageStatus.FAILED,
    MessageStatus.CANCELLED: MessageStatus.CANCELLED,
    MessageStatus.STREAMING: MessageStatus.FAILED,
    MessageStatus.QUEUED: MessageStatus.CANCELLED,
    # A reply that waited for tool approval: its calls are never answered.
    MessageStatus.AWAITING_APPROVAL: MessageStatus.CANCELLED,
}
# What a message's file reference must carry: its payload is read from it
# (conversations/files/links.with_url).
FILE_REFERENCE_FIELDS = {"name": str, "content_type": str, "size": int, "sha256": str}


class _Invalid(Exception):
    def __init__(self, path: str, code: str, message: str) -> None:
        super().__init__(message)
        self.path, self.code, self.message = path, code, message


@dataclass
class _Message:
    path: str
    content: dict[str, Any]
    role: str
    text: str
    status: str
    turn_id: uuid.UUID | None
    client_message_id: str | None
    model: str
    usage: Any
    error: Any
    created_at: datetime
    feedback: tuple[str, str] | None
    file_refs: list[tuple[str, Any]] = field(default_factory=list)


@dataclass
class _Conversation:
    agent: Agent
    title: str
    context: dict[str, Any]
    model: str
    temperature: float | None
    project: Project | None
    pinned: bool
    archived_at: datetime | None
    created_at: datetime | None
    messages: list[_Message]


def import_document(*, user: Any, document: Any) -> list[Conversation]:
    """Import every conversation of `document` (the export's JSON, parsed) for `user`,
    with new ids. The whole document is checked first: ValidationFailed naming the
    first bad field's path, nothing stored. Then one transaction writes it all."""
    try:
        plans = _check_document(user, document)
    except _Invalid as invalid:
        raise ValidationFailed(
            f"{invalid.path}: {invalid.message}",
            fields={invalid.path: [{"code": invalid.code, "message": invalid.message}]},
        ) from None
    return _write_all(user=user, plans=plans)


# --- checking ---------------------------------------------------------------------------


def _check_document(user: Any, document: Any) -> list[_Conversation]:
    if not isinstance(document, dict):
        raise _Invalid("body", "invalid", "The body must be an export document (an object).")
    _no_unknown_keys(document, DOCUMENT_KEYS, "")
    if "format" in document and document["format"] != FORMAT:
        raise _Invalid("format", "invalid", f"format must be {FORMAT!r}.")
    if "version" in document and document["version"] != VERSION:
        raise _Invalid("version", "unsupported", f"Only version {VERSION} can be imported.")
    conversations = document.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        raise _Invalid("conversations", "required", "conversations must be a non-empty list.")
    if len(conversations) > MAX_CONVERSATIONS:
        raise _Invalid(
            "conversations", "too_many", f"At most {MAX_CONVERSATIONS} conversations at once."
        )
    total = sum(
        len(c["messages"])
        for c in conversations
        if isinstance(c, dict) and isinstance(c.get("messages"), list)
    )
    if total > MAX_MESSAGES:
        raise _Invalid("conversations", "too_many", f"At most {MAX_MESSAGES} messages at once.")
    # Agents and projects are looked up once each, however many conversations name them.
    agents: dict[str, Agent | None] = {}
    projects: dict[int, Project | None] = {}
    plans = [
        _check_conversation(user, data, f"conversations[{index}]", agents, projects)
        for index, data in enumerate(conversations)
    ]
    _check_files(user, [ref for plan in plans for m in plan.messages for ref in m.file_refs])
    return plans


def _check_conversation(
    user: Any,
    data: Any,
    path: str,
    agents: dict[str, Agent | None],
    projects: dict[int, Project | None],
) -> _Conversation:
    if not isinstance(data, dict):
        raise _Invalid(path, "invalid", "A conversation must be an object.")
    _no_unknown_keys(data, CONVERSATION_KEYS, path)
    slug = data.get("agent")
    if not isinstance(slug, str):
        raise _Invalid(f"{path}.agent", "required", "agent must be an agent's slug.")
    if slug not in agents:
        agents[slug] = Agent.objects.filter(slug=slug, is_active=True).first()
    agent = agents[slug]
    if agent is None:
        raise _Invalid(f"{path}.agent", "not_found", f"Unknown agent {slug!r}.")
    title = data.get("title", "")
    if not isinstance(title, str):
        raise _Invalid(f"{path}.title", "invalid", "title must be a string.")
    if len(title) > MAX_TITLE_CHARS:
        raise _Invalid(f"{path}.title", "too_long", f"title is longer than {MAX_TITLE_CHARS}.")
    # The conversation services' own checks, their field names placed under `path`.
    context = _with_path(path, lambda: validate_context(agent=agent, context=data.get("context")))
    model = _with_path(path, lambda: validate_model_choice(agent=agent, model=data.get("model")))
    temperature = _with_path(path, lambda: validate_temperature(data.get("temperature")))
    project = None
    if data.get("project") is not None:
        project_id = data["project"]
        if isinstance(project_id, bool) or not isinstance(project_id, int):
            raise _Invalid(f"{path}.project", "invalid", "project must be a project id or null.")
        if project_id not in projects:
            projects[project_id] = Project.objects.filter(pk=project_id, user_id=user.pk).first()
        project = projects[project_id]
        if project is None:
            raise _Invalid(f"{path}.project", "not_found", "Project not found.")
    pinned = data.get("pinned", False)
    if not isinstance(pinned, bool):
        raise _Invalid(f"{path}.pinned", "invalid", "pinned must be true or false.")
    messages = data.get("messages", [])
    if not isinstance(messages, list):
        raise _Invalid(f"{path}.messages", "invalid", "messages must be a list.")
    turn_ids: dict[str, uuid.UUID] = {}
    client_ids: set[str] = set()
    checked = []
    for index, message in enumerate(messages):
        item = _check_message(message, f"{path}.messages[{index}]", turn_ids)
        if item.client_message_id is not None:
            if item.client_message_id in client_ids:
                raise _Invalid(
                    f"{item.path}.client_message_id",
                    "duplicate",
                    "client_message_id is used twice in this conversation.",
                )
            client_ids.add(item.client_message_id)
        checked.append(item)
    return _Conversation(
        agent=agent,
        title=title.strip(),
        context=context,
        model=model,
        temperature=temperature,
        project=project,
        pinned=pinned,
        archived_at=_timestamp(data.get("archived_at"), f"{path}.archived_at"),
        created_at=_timestamp(data.get("created_at"), f"{path}.created_at"),
        messages=checked,
    )


def _check_message(data: Any, path: str, turn_ids: dict[str, uuid.UUID]) -> _Message:
    if not isinstance(data, dict):
        raise _Invalid(path, "invalid", 'A message must be an object with "_type" and "_value".')
    _no_unknown_keys(data, MESSAGE_KEYS, path)
    if not isinstance(data.get("_type"), str):
        raise _Invalid(f"{path}._type", "required", "_type must name a LangChain message class.")
    if not isinstance(data.get("_value"), dict):
        raise _Invalid(f"{path}._value", "required", "_value must be an object.")
    content = {"_type": data["_type"], "_value": data["_value"]}
    message = _decode(content, path)
    role = role_of(message)
    if data.get("role") is not None and data["role"] != role:
        raise _Invalid(f"{path}.role", "mismatch", f"A {data['_type']} has the role {role!r}.")
    text = data["text"] if "text" in data else text_of(message)
    if not isinstance(text, str):
        raise _Invalid(f"{path}.text", "invalid", "text must be a string.")
    status = data.get("status", MessageStatus.COMPLETE)
    if not isinstance(status, str) or status not in STATUS_ON_IMPORT:
        raise _Invalid(f"{path}.status", "invalid", "Unknown status.")
    error = data.get("error")
    if error is not None and not isinstance(error, dict):
        raise _Invalid(f"{path}.error", "invalid", "error must be an object or null.")
    if status == MessageStatus.STREAMING:
        error = INTERRUPTED_ERROR
    usage = data["usage"] if "usage" in data else usage_of(message)
    if usage is not None and not isinstance(usage, dict):
        raise _Invalid(f"{path}.usage", "invalid", "usage must be an object or null.")
    return _Message(
        path=path,
        content=content,
        role=role,
        text=text,
        status=STATUS_ON_IMPORT[status],
        turn_id=_turn_id(data.get("turn_id"), f"{path}.turn_id", turn_ids),
        client_message_id=_short_string(
            data.get("client_message_id"), f"{path}.client_message_id", MAX_CLIENT_MESSAGE_ID_CHARS
        ),
        model=_short_string(data.get("model"), f"{path}.model", MAX_MODEL_CHARS) or "",
        usage=usage,
        error=error,
        created_at=_timestamp(data.get("created_at"), f"{path}.created_at") or timezone.now(),
        feedback=_feedback(data.get("feedback"), f"{path}.feedback", role, status),
        file_refs=_file_refs(content["_value"], f"{path}._value"),
    )


def _decode(content: dict[str, Any], path: str) -> Any:
    try:
        return decode_message(content)
    except CodecError as error:
        cause = error.__cause__
        if isinstance(cause, pydantic.ValidationError) and cause.errors():
            first = cause.errors()[0]
            where = _located(content["_value"], first["loc"], first["type"] == "missing")
            raise _Invalid(f"{path}._value{where}", "invalid", first["msg"]) from None
        if content["_type"] not in MESSAGE_CLASSES:
            raise _Invalid(f"{path}._type", "invalid", str(error)) from None
        raise _Invalid(f"{path}._value", "invalid", str(error)) from None


def _located(value: Any, loc: tuple[Any, ...], missing: bool) -> str:
    """The part of a pydantic error location that exists in `value` (its union branch
    names are not in the data), plus the missing key of a `missing` error."""
    where, current = "", value
    for part in loc:
        if isinstance(current, dict) and part in current:
            where, current = f"{where}.{part}", current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            where, current = f"{where}[{part}]", current[part]
        else:
            if missing and isinstance(current, dict) and isinstance(part, str):
                where += f".{part}"
            break
    return where


def _file_refs(value: dict[str, Any], path: str) -> list[tuple[str, Any]]:
    """(path, file id) of every file a message names."""
    refs: list[tuple[str, Any]] = []
    blocks = value.get("content")
    for index, block in enumerate(blocks if isinstance(blocks, list) else []):
        if not isinstance(block, dict):
            continue
        here = f"{path}.content[{index}]"
        if REFERENCE_KEY in block:
            reference = block[REFERENCE_KEY]
            _check_reference(reference, f"{here}.{REFERENCE_KEY}")
            refs.append((f"{here}.{REFERENCE_KEY}.id", reference.get("id")))
        file_id = block.get("file_id")
        if isinstance(file_id, str) and file_id.startswith("confab:"):
            refs.append((f"{here}.file_id", file_id.removeprefix("confab:")))
    artifact = value.get("artifact")
    if isinstance(artifact, dict) and artifact.get("kind") == "file" and "file_id" in artifact:
        refs.append((f"{path}.artifact.file_id", artifact["file_id"]))
    return refs


def _check_reference(reference: Any, path: str) -> None:
    """A file reference is stored as sent (byte-equal round trips): it must carry what
    every later read of the message takes from it."""
    if not isinstance(reference, dict):
        raise _Invalid(path, "invalid", "A file reference must be an object.")
    for key, kind in FILE_REFERENCE_FIELDS.items():
        value = reference.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise _Invalid(f"{path}.{key}", "required", f"{key} must be a {kind.__name__}.")


def _check_files(user: Any, refs: list[tuple[str, Any]]) -> None:
    """Every file a message names is one of the user's (one query)."""
    ids = {}
    for path, value in refs:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise _Invalid(path, "invalid", "A file reference is a file id.")
        try:
            ids[path] = int(value)
        except ValueError:
            raise _Invalid(path, "invalid", "A file reference is a file id.") from None
    wanted = {pk for pk in ids.values() if 0 < pk < 2**63}
    mine = set(UserFile.objects.filter(user_id=user.pk, pk__in=wanted).values_list("pk", flat=True))
    for path, pk in ids.items():
        if pk not in mine:
            raise _Invalid(path, "not_found", "File not found (files are not imported).")


def _feedback(value: Any, path: str, role: str, status: str) -> tuple[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Invalid(path, "invalid", "feedback must be an object or null.")
    if role != MessageRole.AI or status == MessageStatus.STREAMING:
        raise _Invalid(path, "not_allowed", "Only a finished AI reply can be rated.")
    if value.get("rating") not in Rating.values:
        raise _Invalid(f"{path}.rating", "invalid", "rating must be up or down.")
    comment = value.get("comment") or ""
    if not isinstance(comment, str):
        raise _Invalid(f"{path}.comment", "invalid", "comment must be a string.")
    if len(comment) > MAX_COMMENT_CHARS:
        raise _Invalid(
            f"{path}.comment", "too_long", f"comment is longer than {MAX_COMMENT_CHARS}."
        )
    return value["rating"], comment


def _turn_id(value: Any, path: str, seen: dict[str, uuid.UUID]) -> uuid.UUID | None:
    """A fresh turn id for each turn id of the document (the same one for its messages)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(path, "invalid", "turn_id must be a UUID or null.")
    try:
        key = str(uuid.UUID(value))
    except ValueError:
        raise _Invalid(path, "invalid", "turn_id must be a UUID or null.") from None
    return seen.setdefault(key, uuid.uuid4())


def _short_string(value: Any, path: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(path, "invalid", "Must be a string or null.")
    if len(value) > limit:
        raise _Invalid(path, "too_long", f"Longer than {limit} characters.")
    return value


def _timestamp(value: Any, path: str) -> datetime | None:
    if value is None:
        return None
    parsed = None
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value)
        except ValueError:
            parsed = None
    if parsed is None:
        raise _Invalid(path, "invalid", "Must be an ISO 8601 timestamp or null.")
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, UTC)
    return parsed


def _no_unknown_keys(data: dict[str, Any], known: set[str], path: str) -> None:
    for key in data:
        if key not in known:
            where = f"{path}.{key}" if path else str(key)
            raise _Invalid(where, "unknown_field", f"Unknown field {key!r}.")


def _with_path(path: str, check: Any) -> Any:
    """Run a service's check; its ValidationFailed's first field, placed under `path`."""
    try:
        return check()
    except ValidationFailed as failed:
        fields = failed.fields or {}
        name, errors = next(iter(fields.items()), ("", [{}]))
        first = errors[0] if errors else {}
        raise _Invalid(
            f"{path}.{name}" if name else path,
            first.get("code", "invalid"),
            first.get("message", str(failed)),
        ) from None


# --- writing ----------------------------------------------------------------------------


@write
def _write_all(*, user: Any, plans: list[_Conversation]) -> list[Conversation]:
    return [_write_conversation(user, plan) for plan in plans]


def _write_conversation(user: Any, plan: _Conversation) -> Conversation:
    last = max((m.created_at for m in plan.messages), default=None)
    conversation = Conversation.objects.create(
        user=user,
        agent=plan.agent,
        context=plan.context,
        title=plan.title,
        model=plan.model,
        temperature=plan.temperature,
        project=plan.project,
        pinned=plan.pinned,
        archived_at=plan.archived_at,
        message_count=len(plan.messages),
        last_message_at=last,
        activity_at=last or plan.created_at or timezone.now(),
    )
    if plan.created_at is not None:
        # auto_now_add sets the creation time on insert: the exported one is put back.
        Conversation.objects.filter(pk=conversation.pk).update(created_at=plan.created_at)
        conversation.created_at = plan.created_at
    rows = [
        ConversationMessage(
            conversation_id=conversation.pk,
            user_id=user.pk,
            role=m.role,
            content=m.content,
            text=m.text,
            status=m.status,
            turn_id=m.turn_id,
            client_message_id=m.client_message_id,
            model=m.model,
            usage=m.usage,
            error=m.error,
            created_at=m.created_at,
        )
        for m in plan.messages
    ]
    ConversationMessage.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    # An export holds the active branch: imported, it is one chain (conversations/tree.py).
    conversation.active_leaf_id = chain_messages(conversation.pk)
    ratings = [
        MessageFeedback(message_id=row.pk, user=user, rating=m.feedback[0], comment=m.feedback[1])
        for row, m in zip(rows, plan.messages, strict=True)
        if m.feedback is not None
    ]
    MessageFeedback.objects.bulk_create(ratings, batch_size=BATCH_SIZE)
    emit(conversation_event(EventType.CONVERSATION_CREATED, conversation), user_id=user.pk)
    for row in rows:
        # The user's other devices fetch the messages through the changes feed; no live
        # event per message (nobody follows a conversation that did not exist).
        record_message_change(row)
    return conversation
