"""Admin for every model; messages show role, status, a text preview and pretty content."""

import json

from django.contrib import admin
from django.utils.html import format_html

from conversations import services
from conversations.models import (
    Agent,
    ChatRoom,
    Conversation,
    ConversationMessage,
    LanguageModel,
)

PREVIEW_CHARS = 80


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "model", "temperature", "is_active", "updated_at"]
    list_filter = ["is_active", "model"]
    search_fields = ["slug", "name", "description"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(LanguageModel)
class LanguageModelAdmin(admin.ModelAdmin):
    """The model registry: edits apply to the next turn that starts."""

    list_display = [
        "name",
        "provider",
        "context_window",
        "max_output_tokens",
        "supports_images",
        "supports_tools",
        "input_price_per_million",
        "output_price_per_million",
        "is_active",
    ]
    list_filter = ["provider", "supports_images", "supports_tools", "is_active"]
    search_fields = ["name", "label"]


class MessageInline(admin.TabularInline):
    model = ConversationMessage
    fields = ["id", "role", "status", "preview", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["-id"]

    def preview(self, obj: ConversationMessage) -> str:
        return obj.text[:PREVIEW_CHARS]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def get_queryset(self, request):
        # Only the latest messages: a long history must not load whole.
        queryset = super().get_queryset(request)
        ids = list(queryset.order_by("-id").values_list("id", flat=True)[:50])
        return queryset.filter(id__in=ids)


@admin.action(description="Clear all messages of the selected conversations")
def clear_messages(modeladmin, request, queryset):
    for conversation in queryset:
        services.clear_conversation(conversation=conversation)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "title",
        "user",
        "agent",
        "message_count",
        "last_message_at",
        "archived_at",
        "active_turn_id",
    ]
    list_filter = [
        "agent",
        ("archived_at", admin.EmptyFieldListFilter),
        "pinned",
        "created_at",
    ]
    search_fields = ["title", "user__username"]
    list_select_related = ["user", "agent"]
    raw_id_fields = ["user"]
    readonly_fields = [
        "message_count",
        "last_message_at",
        "activity_at",
        "active_turn_id",
        "active_turn_heartbeat_at",
        "title_source",
        "title_attempted_at",
        "created_at",
        "updated_at",
    ]
    actions = [clear_messages]
    inlines = [MessageInline]


@admin.register(ConversationMessage)
class ConversationMessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "role", "status", "preview", "model", "created_at"]
    list_filter = ["role", "status", "created_at"]
    search_fields = ["text", "client_message_id"]
    list_select_related = ["conversation"]
    raw_id_fields = ["conversation", "user"]
    readonly_fields = ["pretty_content", "created_at", "updated_at"]
    exclude = ["content"]
    show_full_result_count = False

    @admin.display(description="text")
    def preview(self, obj: ConversationMessage) -> str:
        text = obj.text.replace("\n", " ")
        return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"

    @admin.display(description="content")
    def pretty_content(self, obj: ConversationMessage) -> str:
        pretty = json.dumps(obj.content, indent=2, ensure_ascii=False, sort_keys=True)
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", pretty)


@admin.register(ChatRoom)
class ChatRoomAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "user", "agent", "conversation", "created_at"]
    list_filter = ["agent"]
    search_fields = ["name", "user__username"]
    raw_id_fields = ["user", "conversation"]
    readonly_fields = ["conversation"]


# The admin of the domain's areas lives with their area.
import conversations.approvals.admin  # noqa: E402
import conversations.feedback.admin  # noqa: E402
import conversations.projects.admin  # noqa: E402
import conversations.shares.admin  # noqa: E402
import conversations.usage.admin  # noqa: E402, F401
