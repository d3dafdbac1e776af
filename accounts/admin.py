from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest, HttpResponse

from accounts.models import AccessToken
from conversations.errors import ServiceUnavailable


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    list_display = ["token_key", "user", "name", "created", "expiry"]
    list_filter = ["created", "expiry"]
    search_fields = ["user__username", "name", "token_key"]
    raw_id_fields = ["user"]
    readonly_fields = ["digest", "token_key", "created"]


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form, spending the same sign-in attempts as REST sign-in (per
    client address and normalized username, `CONFAB_THROTTLE_LOGIN`, one counter for
    both): without it the admin allowed unlimited password guessing. Past the rate even
    the right password is refused, before it is checked; while the counter's cache is
    unreachable, sign-in is refused (fail closed, as on REST)."""

    def clean(self) -> dict[str, Any]:
        # Imported here: the REST layer imports the accounts app, not the other way round.
        from api.rest.throttles import LoginThrottle

        username = self.cleaned_data.get("username") or ""
        throttle = LoginThrottle()
        try:
            allowed = throttle.spend_attempt(self.request, username)
        except ServiceUnavailable:
            self.request._confab_login_status = 503
            raise forms.ValidationError(
                "Signing in is unavailable for a moment. Retry shortly.", code="unavailable"
            ) from None
        if not allowed:
            wait = max(1, int(throttle.wait() or 1))
            self.request._confab_login_status = 429
            self.request._confab_login_retry_after = wait
            raise forms.ValidationError(
                "Too many sign-in attempts. Try again in %(wait)d seconds.",
                code="throttled",
                params={"wait": wait},
            )
        return super().clean()


def throttled_admin_login(view: Any) -> Any:
    """The admin's login view, answering 429 (with Retry-After) or 503 when the form
    refused for the rate limit, rather than a 200 page."""

    def login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        response = view(request, extra_context)
        status = getattr(request, "_confab_login_status", None)
        if status:
            response.status_code = status
            response["Retry-After"] = str(getattr(request, "_confab_login_retry_after", 5))
        return response

    return login


admin.site.login_form = ThrottledAdminAuthenticationForm
admin.site.login = throttled_admin_login(admin.site.login)
