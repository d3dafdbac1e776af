"""Request and response shapes of the REST API.

Input serializers check JSON types strictly (a number is not a string, "yes"
is not a boolean) and reject unknown fields, so a misspelt
`client_msg_id` is an error instead of a silently non-idempotent request.
Rules about values (blank content, template variables, lengths from
settings) belong to the services, which raise field errors of their own.

Output serializers document the shapes; the message and conversation shapes
are produced by `conversations.events`, the one definition shared with the
live surfaces.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.feedback.models import Rating
from conversations.llm.registry import model_payload
from conversations.models import MessageRole, MessageStatus, OnBusy
from conversations.payloads import (
    agent_payload,
    conversation_payload,
    message_payload,
    tool_approval_payload,
)

# --- strict input fields ----------------------------------------------------


class StrictCharField(serializers.CharField):
    """A JSON string, never a coerced number or boolean."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false, never "yes", 1 or "false"."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class StrictFloatField(serializers.FloatField):
    """A JSON number, never a numeric string or a boolean."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


CONTEXT_SCHEMA = {
    "type": "object",
    "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "number"}]},
    "description": "Values of the agent's template variables (see the agent's "
    "`context_variables`). Unknown or missing required variables are a 400.",
}


class StrictEmailField(serializers.EmailField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# One named component for create and update bodies (SDKs get one `Context`
# class instead of a twin per request body).
@extend_schema_field(CONTEXT_SCHEMA, component_name="Context")
class ContextField(serializers.JSONField):
    """The template context: a JSON object (its keys and values are checked by the service)."""

    default_error_messages = {"invalid": "Expected a JSON object."}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, Mapping):
            self.fail("invalid")
        return dict(data)


# Base of request bodies: a JSON object without unknown fields. (A comment, not
# a docstring: the schema would show it as every body's description.)
class InputSerializer(serializers.Serializer):
    def to_internal_value(self, data: Any) -> Any:
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, Mapping) else []
        errors: dict[str, Any] = {
            name: [serializers.ErrorDetail("Unknown field.", code="unknown_field")]
            for name in unknown
        }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            errors = {**exc.detail, **errors}
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def create(self, validated_data: Any) -> Any:  # pragma: no cover - input only
        raise NotImplementedError

    def update(self, instance: Any, validated_data: Any) -> Any:  # pragma: no cover
        raise NotImplementedError


# Base of response shapes (read only).
class OutputSerializer(serializers.Serializer):
    def create(self, validated_data: Any) -> Any:  # pragma: no cover - output only
        raise NotImplementedError

    def update(self, instance: Any, validated_data: Any) -> Any:  # pragma: no cover
        raise NotImplementedError


# --- errors -----------------------------------------------------------------


class FieldErrorSerializer(OutputSerializer):
    """One problem with one request field."""

    code = serializers.CharField(read_only=True, help_text="Stable machine-readable code.")
    message = serializers.CharField(read_only=True, help_text="Human-readable explanation.")


class ErrorSerializer(OutputSerializer):
    """The one error shape of the API."""

    # Not read_only: the schema then keeps `fields` optional (it is sent only
    # when there are field errors).
    type = serializers.CharField(
        help_text="Error family: invalid_request, authentication_error, permission_error, "
        "not_found, conflict, rate_limited, service_unavailable, api_error.",
    )
    code = serializers.CharField(
        help_text="Stable code to branch on, e.g. VALIDATION_ERROR, NOT_FOUND, "
        "TURN_IN_PROGRESS, RATE_LIMITED.",
    )
    detail = serializers.CharField(help_text="Human-readable explanation.")
    fields = serializers.DictField(
        child=FieldErrorSerializer(many=True),
        required=False,
        help_text="Per-field errors, keyed by field name (dotted for nested fields).",
    )
    request_id = serializers.CharField(
        required=False,
        help_text="The request's id, as in the X-Request-ID response header: quote it when "
        "reporting a problem (the server's log lines of that request carry it).",
    )
    resets_at = serializers.DateTimeField(
        required=False,
        help_text="QUOTA_EXCEEDED: when the spent quota period ends (UTC).",
    )
    period = serializers.CharField(
        required=False, help_text='QUOTA_EXCEEDED: the spent period, "day" or "month".'
    )
    metric = serializers.CharField(
        required=False, help_text='QUOTA_EXCEEDED: what is spent, "tokens" or "cost" (USD).'
    )


# --- auth -------------------------------------------------------------------


class UserSerializer(OutputSerializer):
    """A user account."""

    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    email = serializers.CharField(read_only=True, help_text="May be empty.")
    date_joined = serializers.DateTimeField(read_only=True)


class TokenSerializer(OutputSerializer):
    """A new bearer token; `token` is shown only in this response."""

    token = serializers.CharField(
        read_only=True, help_text="Send as `Authorization: Bearer <token>`."
    )
    expiry = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="When the token stops working."
    )
    user = UserSerializer(read_only=True)


class TokenCreateSerializer(InputSerializer):
    """Credentials for a new token."""

    username = StrictCharField(max_length=150, trim_whitespace=False)
    password = StrictCharField(
        max_length=4096, trim_whitespace=False, style={"input_type": "password"}
    )
    device_name = StrictCharField(
        max_length=100,
        required=False,
        allow_blank=True,
        help_text="Shown in the user's token list, e.g. 'Pixel 8'.",
    )


class PasswordChangeSerializer(InputSerializer):
    """The current password (checked) and the new one (the server's password rules)."""

    current_password = StrictCharField(
        max_length=4096, trim_whitespace=False, style={"input_type": "password"}
    )
    new_password = StrictCharField(
        max_length=4096, trim_whitespace=False, style={"input_type": "password"}
    )


class RegisterSerializer(TokenCreateSerializer):
    """A new account; the response is a token for it."""

    email = StrictEmailField(required=False)


# --- agents -----------------------------------------------------------------


class ContextVariableSerializer(OutputSerializer):
    """A template variable of an agent, set through a conversation's `context`."""

    name = serializers.CharField(read_only=True)
    default = serializers.CharField(
        read_only=True, allow_null=True, help_text="Used when the context omits it."
    )
    description = serializers.CharField(read_only=True, allow_blank=True)
    required = serializers.BooleanField(read_only=True, help_text="True when it has no default.")


class AgentSerializer(OutputSerializer):
    """A persona: prompts, model and tools a conversation runs with."""

    slug = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True, allow_blank=True)
    context_variables = ContextVariableSerializer(many=True, read_only=True)
    model = serializers.CharField(read_only=True)
    allowed_models = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Models a conversation may switch to; empty: any of GET /api/v1/models/.",
    )
    tools = serializers.ListField(child=serializers.CharField(), read_only=True)

    def to_representation(self, agent: Any) -> dict[str, Any]:
        return agent_payload(agent)


class AgentListSerializer(OutputSerializer):
    """The active agents, by name."""

    results = AgentSerializer(many=True, read_only=True)


class LanguageModelSerializer(OutputSerializer):
    """A model of the registry: provider, limits, abilities and prices."""

    name = serializers.CharField(read_only=True, help_text="Send as `model` in PATCH.")
    label = serializers.CharField(read_only=True)
    provider = serializers.CharField(
        read_only=True, help_text="openai, openai_compatible, anthropic, google, ollama, demo"
    )
    context_window = serializers.IntegerField(read_only=True)
    max_output_tokens = serializers.IntegerField(read_only=True)
    supports_images = serializers.BooleanField(read_only=True)
    supports_tools = serializers.BooleanField(read_only=True)
    input_price_per_million = serializers.FloatField(
        read_only=True, allow_null=True, help_text="USD per million input tokens."
    )
    output_price_per_million = serializers.FloatField(
        read_only=True, allow_null=True, help_text="USD per million output tokens."
    )

    def to_representation(self, row: Any) -> dict[str, Any]:
        return model_payload(row)


class LanguageModelListSerializer(OutputSerializer):
    """The active models, by provider and name."""

    results = LanguageModelSerializer(many=True, read_only=True)


# --- messages ---------------------------------------------------------------


class UsageSerializer(OutputSerializer):
    """Tokens used by an AI reply, as the provider reported them."""

    input_tokens = serializers.IntegerField(read_only=True)
    output_tokens = serializers.IntegerField(read_only=True)
    total_tokens = serializers.IntegerField(read_only=True)


class MessageErrorSerializer(OutputSerializer):
    """Why a reply failed (stable `code`, safe `message`)."""

    code = serializers.CharField(
        read_only=True,
        help_text="provider_timeout, provider_rate_limited, provider_error, provider_rejected, "
        "provider_unavailable, provider_stream_interrupted, interrupted, internal_error, ...",
    )
    message = serializers.CharField(read_only=True)


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {},
        "description": 'The stored LangChain message, losslessly: {"_type": "AIMessage", '
        '"_value": {...}} with tool calls, usage and response metadata.',
    }
)
class MessageContentField(serializers.JSONField):
    pass


class FileSerializer(OutputSerializer):
    """A file of the user's: an upload or a tool's output. `url` serves its bytes to an
    `<img>` tag or a download without a token, for CONFAB_FILE_URL_TTL (about an hour);
    `GET /api/v1/files/{id}/content/` serves them with the token."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    content_type = serializers.CharField(
        read_only=True,
        help_text="From the bytes: image/png, image/jpeg, image/webp, application/pdf, "
        "text/plain, text/markdown, text/csv (GIFs are stored as PNG).",
    )
    size = serializers.IntegerField(read_only=True, help_text="Bytes, as stored.")
    sha256 = serializers.CharField(read_only=True, help_text="Of the stored bytes.")
    width = serializers.IntegerField(read_only=True, allow_null=True)
    height = serializers.IntegerField(read_only=True, allow_null=True)
    url = serializers.CharField(read_only=True, help_text="A signed path that expires.")
    created_at = serializers.DateTimeField(read_only=True, allow_null=True)


class FeedbackOutputSerializer(OutputSerializer):
    """The user's thumbs up/down on an AI reply."""

    rating = serializers.ChoiceField(choices=Rating.choices, read_only=True)
    comment = serializers.CharField(read_only=True, allow_blank=True)
    updated_at = serializers.DateTimeField(read_only=True)


class SiblingsSerializer(OutputSerializer):
    """The versions of a message: its parent's children, itself included."""

    ids = serializers.ListField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="Ids of the message and its siblings (other versions), oldest first.",
    )
    index = serializers.IntegerField(read_only=True, help_text="This message's place in `ids`.")


class MessageSerializer(OutputSerializer):
    """A stored message: the same shape as in live events."""

    id = serializers.IntegerField(read_only=True, help_text="Increases with time: the cursor.")
    conversation = serializers.IntegerField(read_only=True)
    role = serializers.ChoiceField(choices=MessageRole.choices, read_only=True)
    text = serializers.CharField(read_only=True, allow_blank=True)
    content = MessageContentField(read_only=True)
    attachments = FileSerializer(
        many=True,
        read_only=True,
        help_text="The files this message references (a human message's attachments, a "
        "tool's output file), each with a freshly signed `url`.",
    )
    status = serializers.ChoiceField(choices=MessageStatus.choices, read_only=True)
    turn_id = serializers.UUIDField(read_only=True, allow_null=True)
    client_message_id = serializers.CharField(read_only=True, allow_null=True)
    model = serializers.CharField(read_only=True, allow_blank=True)
    usage = UsageSerializer(read_only=True, allow_null=True)
    error = MessageErrorSerializer(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    feedback = FeedbackOutputSerializer(
        read_only=True, allow_null=True, help_text="The user's rating (AI replies only)."
    )
    parent_id = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="The message this one follows in the conversation's tree (null: a first "
        "message).",
    )
    siblings = SiblingsSerializer(
        read_only=True,
        help_text="The other versions of this message (regenerated replies, edited "
        "messages): show `< index+1 / len(ids) >` when there are several; "
        "`POST conversations/{id}/branch/ {message_id}` switches to one.",
    )

    def to_representation(self, message: Any) -> dict[str, Any]:
        return message_payload(message)


class MessagePageSerializer(OutputSerializer):
    """A page of history: `results` oldest first.

    Next older page: `before=<older_cursor>`; next newer page: `after=<newer_cursor>`.
    """

    results = MessageSerializer(many=True, read_only=True)
    has_older = serializers.BooleanField(read_only=True)
    has_newer = serializers.BooleanField(read_only=True)
    older_cursor = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Pass as `before` for the older page."
    )
    newer_cursor = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Pass as `after` for the newer page."
    )

    def to_representation(self, page: Any) -> dict[str, Any]:
        # The fields above, written directly: DRF's field machinery cost more than
        # the page's query (bench/BENCHMARKS.md).
        return {
            "results": [
                message_payload(message, page.feedback.get(message.id)) for message in page.results
            ],
            "has_older": page.has_older,
            "has_newer": page.has_newer,
            "older_cursor": page.older_cursor,
            "newer_cursor": page.newer_cursor,
        }


class MessageEditSerializer(InputSerializer):
    """The new version of a human message; starts a turn that answers it."""

    content = StrictCharField(
        trim_whitespace=False,
        help_text="The edited message (at most CONFAB_MAX_CONTENT_CHARS characters).",
    )
    client_message_id = StrictCharField(
        max_length=100,
        required=False,
        allow_null=True,
        help_text="Idempotency key, as for `messages_send`: the same id again returns the "
        "first edit's turn.",
    )


class MessageChoiceSerializer(InputSerializer):
    """A message of the conversation, by id."""

    message_id = serializers.IntegerField(min_value=1)


class MessageCreateSerializer(InputSerializer):
    """A message from the user; starts a turn."""

    content = StrictCharField(
        trim_whitespace=False,
        required=False,
        allow_blank=True,
        help_text="The user's message (at most CONFAB_MAX_CONTENT_CHARS characters). "
        "Required unless files are attached.",
    )
    attachments = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        help_text="Ids of the user's files (`POST /api/v1/files/`) to send with the message, "
        "at most CONFAB_FILES_PER_MESSAGE (10).",
    )
    client_message_id = StrictCharField(
        max_length=100,
        required=False,
        allow_null=True,
        help_text="Idempotency key chosen by the client (e.g. a UUID). Sending the same id "
        "again returns the first turn's result instead of starting another turn.",
    )
    on_busy = serializers.ChoiceField(
        choices=OnBusy.choices,
        required=False,
        allow_null=True,
        help_text="While a turn runs: `reject` (409 TURN_IN_PROGRESS with Retry-After) or "
        "`enqueue` (the message is stored at once as `queued`, answered after the running "
        "turn, in order; 202). Default: the agent's setting (`reject` unless configured).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("attachments"):
            if "content" not in attrs:
                raise serializers.ValidationError(
                    {"content": [serializers.ErrorDetail("This field is required.", "required")]}
                )
            if attrs["content"] == "":
                raise serializers.ValidationError(
                    {"content": [serializers.ErrorDetail("This field may not be blank.", "blank")]}
                )
        return attrs


class TurnResultSerializer(OutputSerializer):
    """The messages of one turn: the human message and the final AI reply."""

    human_message = MessageSerializer(read_only=True)
    ai_message = MessageSerializer(
        read_only=True,
        allow_null=True,
        help_text="The final reply: complete, failed or cancelled (null while the human "
        "message is `queued`).",
    )


class ToolApprovalSerializer(OutputSerializer):
    """A tool call that waits (or waited) for the user's approval, and its decision."""

    call_id = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True, help_text="The tool's name.")
    arguments = serializers.JSONField(read_only=True, help_text="The call's arguments.")
    message_id = serializers.IntegerField(read_only=True, help_text="The AI message.")
    decision = serializers.ChoiceField(
        choices=["approved", "denied"], read_only=True, allow_null=True, help_text="null: pending."
    )
    decided_by = serializers.ChoiceField(
        choices=["user", "timeout", "cancel"], read_only=True, allow_null=True
    )
    reason = serializers.CharField(read_only=True, allow_blank=True)
    decided_at = serializers.DateTimeField(read_only=True, allow_null=True)
    deadline = serializers.DateTimeField(
        read_only=True, help_text="Denied by the server after this (CONFAB_TOOL_APPROVAL_TIMEOUT)."
    )

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return tool_approval_payload(instance)


class CancelResultSerializer(OutputSerializer):
    """A cancel request was recorded; the reply ends as `cancelled` shortly."""

    turn_id = serializers.UUIDField(read_only=True, help_text="The turn asked to stop.")


# --- conversations ----------------------------------------------------------


class LiveConversationSerializer(OutputSerializer):
    """A conversation as live events and the changes feed carry it (no last message)."""

    id = serializers.IntegerField(read_only=True)
    title = serializers.CharField(read_only=True, allow_blank=True)
    agent = serializers.CharField(read_only=True, help_text="The agent's slug.")
    context = serializers.DictField(child=serializers.CharField(), read_only=True)
    model = serializers.CharField(
        read_only=True,
        help_text="The model its turns use: its own choice (PATCH), else the agent's.",
    )
    temperature = serializers.FloatField(
        read_only=True, allow_null=True, help_text="Its own choice; null: the agent's (not shown)."
    )
    archived = serializers.BooleanField(read_only=True)
    archived_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_message_at = serializers.DateTimeField(read_only=True, allow_null=True)
    message_count = serializers.IntegerField(read_only=True)
    active_turn_id = serializers.UUIDField(
        read_only=True, allow_null=True, help_text="Set while a turn is running."
    )
    project = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The project it is in (id), if any."
    )
    pinned = serializers.BooleanField(read_only=True, help_text="Pinned: listed first.")
    active_leaf_id = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="The last message of the active branch (what history pages show); null "
        "while there is no message.",
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def to_representation(self, conversation: Any) -> dict[str, Any]:
        return conversation_payload(conversation)


class ConversationSerializer(LiveConversationSerializer):
    """A conversation (the shape of live events) with its last message."""

    last_message = MessageSerializer(read_only=True, allow_null=True)

    def to_representation(self, conversation: Any) -> dict[str, Any]:
        last = getattr(conversation, "last_message", None)
        return {
            **conversation_payload(conversation),
            "last_message": message_payload(last) if last is not None else None,
        }


class ConversationPageSerializer(OutputSerializer):
    """A page of the conversation list, newest activity first."""

    results = ConversationSerializer(many=True, read_only=True)
    next_cursor = serializers.CharField(
        read_only=True, allow_null=True, help_text="Pass as `cursor` for the next page."
    )
    has_more = serializers.BooleanField(read_only=True)


class ConversationCreateSerializer(InputSerializer):
    """A new conversation with an agent."""

    agent = StrictCharField(
        max_length=64,
        required=False,
        help_text="The agent's slug; optional in a project with a default agent.",
    )
    context = ContextField(required=False)
    title = StrictCharField(max_length=200, required=False, allow_blank=True)
    project = serializers.IntegerField(
        required=False, allow_null=True, help_text="Create it in this project (id)."
    )


class ConversationUpdateSerializer(InputSerializer):
    """Only the fields given are changed."""

    title = StrictCharField(max_length=200, required=False, allow_blank=True)
    context = ContextField(required=False)
    archived = StrictBooleanField(required=False)
    model = StrictCharField(
        max_length=100,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="A model of GET /api/v1/models/ the agent allows; null: the agent's default.",
    )
    temperature = StrictFloatField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=2,
        help_text="0 to 2; null: the agent's.",
    )
    project = serializers.IntegerField(
        required=False, allow_null=True, help_text="Move it to this project (id); null: none."
    )
    pinned = StrictBooleanField(required=False, help_text="Pinned conversations are listed first.")
