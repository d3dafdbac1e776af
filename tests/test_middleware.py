"""core.middleware: Django's middleware without thread hops under ASGI, same behaviour."""

import re
from collections import Counter

import httpx
import pytest
from asgiref import sync
from django.contrib.auth import get_user_model
from django.core.checks.security import base as security_checks
from django.core.checks.security import csrf as csrf_checks

from core.middleware import check_security_middleware

pytestmark = pytest.mark.django_db(transaction=True)


def asgi_client(**kwargs) -> httpx.AsyncClient:
    from backend.asgi import application

    # https: the session and CSRF cookies are Secure.
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="https://testserver", **kwargs
    )


def test_deploy_check_accepts_subclasses_and_reports_missing_middleware(settings):
    assert check_security_middleware() == []
    settings.MIDDLEWARE = [
        name
        for name in settings.MIDDLEWARE
        if not name.endswith(
            ("SecurityMiddleware", "XFrameOptionsMiddleware", "CsrfViewMiddleware")
        )
    ]
    assert check_security_middleware() == [
        security_checks.W001,
        security_checks.W002,
        csrf_checks.W003,
    ]
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.csrf.CsrfViewMiddleware"]
    assert csrf_checks.W003 not in check_security_middleware()


async def test_session_login_and_csrf_work_under_asgi():
    """The admin's login writes the session in process_response: it must still be saved."""
    await sync.sync_to_async(get_user_model().objects.create_superuser)(
        "boss", "boss@example.com", "pw-boss-123"
    )
    async with asgi_client(headers={"Referer": "https://testserver/admin/login/"}) as client:
        form = await client.get("/admin/login/")
        assert form.status_code == 200
        assert form.headers["x-frame-options"] == "DENY"
        assert form.headers["x-content-type-options"] == "nosniff"
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        refused = await client.post(
            "/admin/login/?next=/admin/", data={"username": "boss", "password": "pw-boss-123"}
        )
        assert refused.status_code == 403  # no CSRF token: CsrfViewMiddleware still guards
        login = await client.post(
            "/admin/login/?next=/admin/",
            data={"username": "boss", "password": "pw-boss-123", "csrfmiddlewaretoken": token},
        )
        assert login.status_code == 302, login.text
        assert "sessionid" in client.cookies
        admin = await client.get("/admin/")
        assert admin.status_code == 200
        assert "boss" in admin.text


async def test_api_request_runs_no_middleware_hook_in_a_thread(token, conversation, monkeypatch):
    hops: Counter[str] = Counter()
    real_call = sync.SyncToAsync.__call__

    async def counting_call(self, *args, **kwargs):
        hops[getattr(self.func, "__qualname__", repr(self.func))] += 1
        return await real_call(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", counting_call)
    async with asgi_client(headers={"Authorization": f"Bearer {token}"}) as client:
        response = await client.get(f"/api/v1/conversations/{conversation.pk}/messages/")
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    middleware_hops = [name for name in hops if "Middleware." in name]
    assert middleware_hops == [], hops
    # Authentication, throttles, the page and its rendering share one thread hop.
    assert hops["ConfabAsyncView.dispatch_in_thread"] == 1, hops
    assert "SimpleTemplateResponse.render" not in hops, hops
    assert response.json()["results"] == []
