"""The admin's login spends the REST sign-in throttle (issue 14, finding 8)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.support.rest import assert_error, with_rates

pytestmark = pytest.mark.django_db

ADMIN_LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user(
        "root", password="root-password-1", is_staff=True, is_superuser=True
    )


def login(client, username: str, password: str = "root-password-1"):
    """REST sign-in."""
    body = {"username": username, "password": password}
    return client.post("/api/v1/auth/token/", body, format="json")


def admin_login(client: Client, password: str, username: str = "root", **meta):
    return client.post(ADMIN_LOGIN, {"username": username, "password": password}, **meta)


def test_admin_login_is_throttled_even_for_the_right_password(staff, settings):
    with_rates(settings, login="5/min")
    client = Client()
    for _ in range(5):
        response = admin_login(client, "wrong")
        assert response.status_code == 200 and "_auth_user_id" not in client.session

    response = admin_login(client, "root-password-1")

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert b"Too many sign-in attempts" in response.content
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # not signed in
    # Another address is counted apart, and signs in.
    other = Client(REMOTE_ADDR="198.51.100.7")
    assert admin_login(other, "root-password-1").status_code == 302
    assert other.get("/admin/").status_code == 200


def test_admin_and_rest_sign_in_share_one_counter(staff, anon, settings):
    with_rates(settings, login="4/min")
    client = Client()
    for _ in range(2):
        assert_error(login(anon, "root", "wrong"), 400, "INVALID_CREDENTIALS")
    for _ in range(2):
        assert admin_login(client, "wrong", username="ROOT").status_code == 200
    assert admin_login(client, "root-password-1").status_code == 429
    assert_error(login(anon, "root", "root-password-1"), 429, "RATE_LIMITED")


def test_admin_login_page_and_a_signed_in_admin_are_not_counted(staff, settings):
    with_rates(settings, login="2/min")
    client = Client()
    for _ in range(5):
        assert client.get(ADMIN_LOGIN).status_code == 200
    assert admin_login(client, "root-password-1").status_code == 302
    assert client.get("/admin/").status_code == 200
