from django.contrib import admin

from accounts.models import AccessToken


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ["token_key", "user", "name", "created", "expiry"]
    list_filter = ["created", "expiry"]
    search_fields = ["user__username", "name", "token_key"]
    raw_id_fields = ["user"]
    readonly_fields = ["digest", "token_key", "created"]
