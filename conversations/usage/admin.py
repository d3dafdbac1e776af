"""Usage in the admin: the per-call ledger, the daily roll-up with the top users of the
filtered days, and per-user quota overrides."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import F, Sum
from django.http import HttpRequest, HttpResponse

from conversations.usage.models import UsageDay, UsageRecord, UserQuota

TOP_USERS = 10


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "user",
        "kind",
        "model",
        "input_tokens",
        "output_tokens",
        "cost",
        "conversation_id",
        "message_id",
    ]
    list_filter = ["kind", "model", "created_at"]
    search_fields = ["user__username", "model"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    date_hierarchy = "created_at"
    # A ledger: read, never edited by hand.
    readonly_fields = [field.name for field in UsageRecord._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(UsageDay)
class UsageDayAdmin(admin.ModelAdmin):
    """The roll-up, one row per user, day, model and conversation; above the list, the
    users who used the most (cost, then tokens) over the filtered rows."""

    list_display = [
        "day",
        "user",
        "model",
        "conversation_id",
        "calls",
        "input_tokens",
        "output_tokens",
        "cost",
    ]
    list_filter = ["model", "day"]
    search_fields = ["user__username", "model"]
    list_select_related = ["user"]
    date_hierarchy = "day"
    readonly_fields = [field.name for field in UsageDay._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            context["top_users"] = top_users(context["cl"].queryset)
        return response


def top_users(rows: Any, limit: int = TOP_USERS) -> list[dict[str, Any]]:
    """The users with the highest cost (then tokens) among these roll-up rows."""
    return list(
        rows.order_by()
        .values("user_id", "user__username")
        .annotate(
            calls=Sum("calls"),
            tokens=Sum(F("input_tokens") + F("output_tokens")),
            total_cost=Sum("cost"),
        )
        .order_by("-total_cost", "-tokens")[:limit]
    )


@admin.register(UserQuota)
class UserQuotaAdmin(admin.ModelAdmin):
    """Per-user overrides of the CONFAB_QUOTA_* defaults (empty field: the default)."""

    list_display = [
        "user",
        "unlimited",
        "tokens_per_day",
        "tokens_per_month",
        "cost_per_day",
        "cost_per_month",
        "updated_at",
    ]
    list_filter = ["unlimited"]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["updated_at"]
