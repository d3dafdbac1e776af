"""The admin's login, rate limited like REST sign-in (issue 14, finding 8).

The admin is a surface like REST: its login spends the same sign-in counter
(`api.rest.throttles.LoginThrottle`), installed on the admin site by `ApiConfig.ready`.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest, HttpResponse

from api.rest.throttles import LoginThrottle
from core.errors import ServiceUnavailable


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form, spending the same sign-in attempts as REST sign-in (per
    client address and normalized username, `CONFAB_THROTTLE_LOGIN`, one counter for
    both): without it the admin allowed unlimited password guessing. Past the rate even
    the right password is refused, before it is checked; while the counter's cache is
    unreachable, sign-in is refused (fail closed, as on REST)."""

    def clean(self) -> dict[str, Any]:
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


def install(site: admin.AdminSite = admin.site) -> None:
    """Put the throttled login form and view on the admin site (ApiConfig.ready)."""
    site.login_form = ThrottledAdminAuthenticationForm
    site.login = throttled_admin_login(site.login)
