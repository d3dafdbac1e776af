"""`/api/v1/auth/`: sign-up, tokens (expiry, revocation, limits), sign-out, me, login throttle."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from knox.models import get_token_model
from rest_framework.test import APIClient

from tests.support.rest import assert_error, with_rates

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
REGISTER_URL = "/api/v1/auth/register/"
ME_URL = "/api/v1/auth/me/"


def signed_in(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def login(client: APIClient, username="alice", password="alice-password-1", meta=None, **extra):
    body = {"username": username, "password": password, **extra}
    return client.post(TOKEN_URL, body, format="json", **(meta or {}))


# --- token ------------------------------------------------------------------


def test_token_create_returns_token_expiry_and_user(anon, user):
    response = login(anon, device_name="Pixel 8")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expiry", "user"}
    assert body["user"]["id"] == user.pk and body["user"]["username"] == "alice"
    expiry = datetime.fromisoformat(body["expiry"])
    assert timedelta(days=29) < expiry - timezone.now() <= timedelta(days=30)
    row = get_token_model().objects.get(user=user)
    assert row.name == "Pixel 8"
    assert body["token"] not in (row.digest, row.token_key)  # only a digest is stored
    assert signed_in(body["token"]).get(ME_URL).json()["username"] == "alice"


def test_token_works_with_token_prefix_too(anon, user):
    token = login(anon).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(ME_URL).status_code == 200


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong-password"), ("nobody", "alice-password-1"), ("ALICE", "alice-password-1")],
)
def test_wrong_credentials_are_one_error(anon, user, username, password):
    body = assert_error(login(anon, username, password), 400, "INVALID_CREDENTIALS")
    assert body["type"] == "invalid_request"
    assert not get_token_model().objects.exists()


def test_inactive_user_cannot_sign_in(anon, user):
    user.is_active = False
    user.save()
    assert_error(login(anon), 400, "INVALID_CREDENTIALS")


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"username", "password"}),
        ({"username": "alice"}, {"password"}),
        ({"username": 5, "password": True}, {"username", "password"}),
        ({"username": "alice", "password": "x", "device_name": ["a"]}, {"device_name"}),
        ({"username": "alice", "password": "x", "device": "a"}, {"device"}),
        ({"username": "alice", "password": "x", "device_name": "d" * 101}, {"device_name"}),
    ],
)
def test_token_bad_input(anon, user, payload, fields):
    body = assert_error(anon.post(TOKEN_URL, payload, format="json"), 400, "VALIDATION_ERROR")
    assert set(body["fields"]) == fields
    for errors in body["fields"].values():
        assert all(set(error) == {"code", "message"} for error in errors)


def test_token_body_must_be_a_json_object(anon, user):
    body = assert_error(anon.post(TOKEN_URL, [1, 2], format="json"), 400, "VALIDATION_ERROR")
    assert "non_field_errors" in body["fields"]


def test_stale_token_in_the_client_does_not_block_sign_in(anon, user):
    anon.credentials(HTTP_AUTHORIZATION="Bearer expired-or-garbage")
    assert login(anon).status_code == 200


def test_sign_in_past_the_token_limit_revokes_the_oldest(anon, user, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_LIMIT_PER_USER": 2}
    first, second, third = (login(anon, device_name=f"d{i}").json()["token"] for i in range(3))

    assert signed_in(first).get(ME_URL).status_code == 401
    assert signed_in(second).get(ME_URL).status_code == 200
    assert signed_in(third).get(ME_URL).status_code == 200
    assert sorted(get_token_model().objects.values_list("name", flat=True)) == ["d1", "d2"]


# --- expiry and revocation -------------------------------------------------


def test_expired_token_is_rejected(user, token):
    get_token_model().objects.filter(user=user).update(expiry=timezone.now() - timedelta(seconds=1))

    response = signed_in(token).get(ME_URL)

    assert_error(response, 401, "NOT_AUTHENTICATED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert not get_token_model().objects.filter(user=user).exists()  # cleaned up


def test_logout_revokes_only_the_calling_token(user, token):
    other_device = login(APIClient()).json()["token"]

    assert signed_in(token).post("/api/v1/auth/logout/").status_code == 204

    assert_error(signed_in(token).get(ME_URL), 401, "NOT_AUTHENTICATED")
    assert signed_in(other_device).get(ME_URL).status_code == 200


def test_logout_all_revokes_every_token_of_the_user(user, token, other_token):
    other_device = login(APIClient()).json()["token"]

    assert signed_in(token).post("/api/v1/auth/logout-all/").status_code == 204

    assert_error(signed_in(token).get(ME_URL), 401, "NOT_AUTHENTICATED")
    assert_error(signed_in(other_device).get(ME_URL), 401, "NOT_AUTHENTICATED")
    assert signed_in(other_token).get(ME_URL).status_code == 200  # another user's


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer a b", "Bearer not-a-token", "Bearer " + "x" * 300, "Basic abc"],
)
def test_bad_authorization_headers_are_401(user, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(ME_URL)
    assert_error(response, 401, "NOT_AUTHENTICATED")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("url", ["/api/v1/auth/logout/", "/api/v1/auth/logout-all/"])
def test_logout_needs_a_token(anon, url):
    assert_error(anon.post(url), 401, "NOT_AUTHENTICATED")


# --- me -----------------------------------------------------------------------


def test_me(api, user):
    response = api.get(ME_URL)
    assert response.status_code == 200
    assert response.json() == {
        "id": user.pk,
        "username": "alice",
        "email": "",
        "date_joined": user.date_joined.isoformat().replace("+00:00", "Z"),
    }


# --- register ---------------------------------------------------------------


def test_register_creates_the_account_and_signs_in(anon, settings):
    settings.CONFAB_REGISTRATION_OPEN = True
    response = anon.post(
        REGISTER_URL,
        {"username": "bob", "password": "a-long-passphrase-9", "email": "bob@example.com"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["user"]["username"] == "bob" and body["user"]["email"] == "bob@example.com"
    assert signed_in(body["token"]).get(ME_URL).json()["username"] == "bob"
    assert get_user_model().objects.get(username="bob").check_password("a-long-passphrase-9")


def test_register_closed_is_403(anon, settings):
    settings.CONFAB_REGISTRATION_OPEN = False
    response = anon.post(REGISTER_URL, {"username": "bob", "password": "x"}, format="json")
    body = assert_error(response, 403, "REGISTRATION_CLOSED")
    assert body["type"] == "permission_error"
    assert not get_user_model().objects.filter(username="bob").exists()


@pytest.mark.parametrize(
    ("payload", "field", "code"),
    [
        ({"username": "ALICE", "password": "a-long-passphrase-9"}, "username", "unique"),
        ({"username": "bad name!", "password": "a-long-passphrase-9"}, "username", "invalid"),
        ({"username": "bob", "password": "123"}, "password", "password_too_short"),
        ({"username": "bob", "password": "password"}, "password", "password_too_common"),
        ({"username": "bob", "password": "a-long-passphrase-9", "email": "no"}, "email", "invalid"),
        ({"username": "bob", "password": "a-long-passphrase-9", "email": 1}, "email", "invalid"),
        (
            {"username": "bob", "password": "a-long-passphrase-9", "admin": 1},
            "admin",
            "unknown_field",
        ),
    ],
)
def test_register_rejects_bad_input(anon, user, settings, payload, field, code):
    settings.CONFAB_REGISTRATION_OPEN = True
    body = assert_error(anon.post(REGISTER_URL, payload, format="json"), 400, "VALIDATION_ERROR")
    assert code in [error["code"] for error in body["fields"][field]]
    assert get_user_model().objects.count() == 1


# --- throttles --------------------------------------------------------------


def test_login_attempts_are_throttled_per_ip_and_username(anon, user, settings):
    with_rates(settings, login="3/min")
    for _ in range(3):
        assert_error(login(anon, password="wrong"), 400, "INVALID_CREDENTIALS")

    throttled = login(anon)  # even the right password waits now
    assert_error(throttled, 429, "RATE_LIMITED")
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60

    # Spoofed X-Forwarded-For does not reset the count...
    assert login(anon, meta={"HTTP_X_FORWARDED_FOR": "203.0.113.9"}).status_code == 429
    # ...but another username, or the same one from another address, is counted apart.
    assert_error(login(anon, username="mallory"), 400, "INVALID_CREDENTIALS")
    assert login(anon, meta={"REMOTE_ADDR": "198.51.100.7"}).status_code == 200


def test_registrations_are_throttled_per_ip(anon, settings):
    settings.CONFAB_REGISTRATION_OPEN = True
    with_rates(settings, register="2/hour")
    for name in ("bob", "carol"):
        payload = {"username": name, "password": "a-long-passphrase-9"}
        assert anon.post(REGISTER_URL, payload, format="json").status_code == 201
    payload = {"username": "dave", "password": "a-long-passphrase-9"}
    response = anon.post(REGISTER_URL, payload, format="json")
    assert_error(response, 429, "RATE_LIMITED")
    assert int(response.headers["Retry-After"]) > 60
