"""Password changes revoke tokens (issue 14, finding 10): `POST /api/v1/auth/password/`
keeps the caller's device signed in and signs out the others; a password set any other
way (the admin, `manage.py changepassword`, `set_password` + `save`) signs out every
device."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from knox.models import get_token_model
from rest_framework.test import APIClient

from tests.support.rest import assert_error, with_rates
from tests.support.tokens import make_token

pytestmark = pytest.mark.django_db

PASSWORD_URL = "/api/v1/auth/password/"
ME_URL = "/api/v1/auth/me/"
OLD = "alice-password-1"
NEW = "a-brand-new-passphrase-7"


def signed_in(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def change(client, current=OLD, new=NEW, **extra):
    body = {"current_password": current, "new_password": new, **extra}
    return client.post(PASSWORD_URL, body, format="json")


def test_password_change_keeps_this_device_and_signs_out_the_others(user, token, other_token):
    phone, laptop = make_token(user, "phone"), make_token(user, "laptop")

    response = change(signed_in(token))

    assert response.status_code == 204
    user.refresh_from_db()
    assert user.check_password(NEW) and not user.check_password(OLD)
    assert signed_in(token).get(ME_URL).status_code == 200
    for revoked in (phone, laptop):
        assert_error(signed_in(revoked).get(ME_URL), 401, "NOT_AUTHENTICATED")
    assert signed_in(other_token).get(ME_URL).status_code == 200  # another user's device
    assert get_token_model().objects.filter(user=user).count() == 1


def test_wrong_current_password_is_400_and_changes_nothing(user, token):
    phone = make_token(user, "phone")
    body = assert_error(change(signed_in(token), current="wrong"), 400, "INVALID_CREDENTIALS")
    assert list(body["fields"]) == ["current_password"]
    user.refresh_from_db()
    assert user.check_password(OLD)
    assert signed_in(phone).get(ME_URL).status_code == 200


@pytest.mark.parametrize(
    ("new", "code"),
    [("123", "password_too_short"), ("password", "password_too_common"), ("alice", None)],
)
def test_new_password_goes_through_the_password_validators(user, token, new, code):
    phone = make_token(user, "phone")
    body = assert_error(change(signed_in(token), new=new), 400, "VALIDATION_ERROR")
    codes = [error["code"] for error in body["fields"]["new_password"]]
    assert codes and (code is None or code in codes)
    assert signed_in(phone).get(ME_URL).status_code == 200


@pytest.mark.parametrize(
    "body",
    [{}, {"current_password": OLD}, {"current_password": OLD, "new_password": 12345678}],
)
def test_password_change_bad_input(user, token, body):
    response = signed_in(token).post(PASSWORD_URL, body, format="json")
    assert_error(response, 400, "VALIDATION_ERROR")


def test_password_change_needs_a_token(anon, user):
    assert_error(change(anon), 401, "NOT_AUTHENTICATED")


def test_password_change_attempts_spend_the_sign_in_throttle(user, token, settings):
    with_rates(settings, login="3/min")
    client = signed_in(token)
    for _ in range(3):
        assert_error(change(client, current="guess"), 400, "INVALID_CREDENTIALS")
    assert_error(change(client), 429, "RATE_LIMITED")
    user.refresh_from_db()
    assert user.check_password(OLD)


# --- any other way of setting a password ---------------------------------------------


def test_set_password_and_save_revokes_every_token(user, token, other_token):
    user.set_password(NEW)
    user.save()
    assert_error(signed_in(token).get(ME_URL), 401, "NOT_AUTHENTICATED")
    assert signed_in(other_token).get(ME_URL).status_code == 200


def test_changepassword_command_revokes_every_token(user, token, monkeypatch):
    monkeypatch.setattr("getpass.getpass", lambda prompt="": NEW)
    call_command("changepassword", "alice", stdout=None)
    assert_error(signed_in(token).get(ME_URL), 401, "NOT_AUTHENTICATED")


def test_admin_password_form_revokes_every_token(user, token, db):
    admin = get_user_model().objects.create_superuser("root", password="root-password-1")
    client = Client()
    client.force_login(admin)
    response = client.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"password1": NEW, "password2": NEW, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:2000]
    user.refresh_from_db()
    assert user.check_password(NEW)
    assert_error(signed_in(token).get(ME_URL), 401, "NOT_AUTHENTICATED")


def test_disabling_the_password_revokes_every_token(user, token, other_token):
    admin = get_user_model().objects.create_superuser("root", password="root-password-1")
    client = Client()
    client.force_login(admin)
    response = client.post(
        f"/admin/auth/user/{user.pk}/password/",
        {"usable_password": "false", "unset-password": "1"},
    )
    assert response.status_code == 302, response.content[:2000]
    user.refresh_from_db()
    assert not user.has_usable_password()
    assert_error(signed_in(token).get(ME_URL), 401, "NOT_AUTHENTICATED")
    assert signed_in(other_token).get(ME_URL).status_code == 200


def test_set_unusable_password_on_a_user_without_one_changes_nothing_else(user, token):
    user.set_unusable_password()
    user.save()
    assert_error(signed_in(token).get(ME_URL), 401, "NOT_AUTHENTICATED")
    phone = make_token(user, "phone")
    user.first_name = "Still no password"
    user.save()  # no usable password before either: not a change
    assert signed_in(phone).get(ME_URL).status_code == 200


def test_saves_that_do_not_set_a_password_keep_the_tokens(user, token):
    user.first_name = "Alice"
    user.save()
    # Signing in updates last_login (and may rehash the password: not a change).
    assert signed_in(token).get(ME_URL).status_code == 200
    response = signed_in(token).post(
        "/api/v1/auth/token/", {"username": "alice", "password": OLD}, format="json"
    )
    assert response.status_code == 200
    assert signed_in(token).get(ME_URL).status_code == 200
