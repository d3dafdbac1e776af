"""Signed-in devices: list, sign one out, push credentials of the current device."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from knox.models import get_token_model
from rest_framework.test import APIClient

from accounts.authentication import LAST_USED_RESOLUTION
from accounts.models import PushCredential
from tests.support.rest import assert_error
from tests.support.tokens import make_token

pytestmark = pytest.mark.django_db

DEVICES = "/api/v1/auth/tokens/"
PUSH = "/api/v1/auth/tokens/current/push/"
SUBSCRIPTION = {
    "endpoint": "https://push.example.test/send/abc",
    "keys": {
        "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u"
        "-Ts1XbjhazAkj7I99e8QcYP7DkM",
        "auth": "tBHItJI5svbpez7KI4CCXg",
    },
}


def client_for(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_the_list_names_each_device_and_the_current_one(user, other_user):
    phone = make_token(user, "Phone")
    laptop = make_token(user, "Laptop")
    make_token(other_user, "Not mine")
    body = client_for(laptop).get(DEVICES).json()
    assert [d["device_name"] for d in body["results"]] == ["Laptop", "Phone"]
    assert [d["current"] for d in body["results"]] == [True, False]
    device = body["results"][0]
    assert set(device) == {
        "id",
        "device_name",
        "created_at",
        "last_used_at",
        "expiry",
        "current",
        "push_platform",
    }
    assert device["last_used_at"] is not None and device["push_platform"] is None
    assert uuid.UUID(device["id"])
    # The phone has not been used since it signed in.
    assert body["results"][1]["last_used_at"] is None
    assert client_for(phone).get(DEVICES).status_code == 200


def test_last_use_is_written_once_a_minute_not_per_request(user):
    token = make_token(user, "Phone")
    client = client_for(token)
    client.get("/api/v1/auth/me/")
    row = get_token_model().objects.get(user=user)
    first = row.last_used_at
    assert first is not None
    client.get("/api/v1/auth/me/")
    assert get_token_model().objects.get(user=user).last_used_at == first
    get_token_model().objects.filter(pk=row.pk).update(
        last_used_at=timezone.now() - LAST_USED_RESOLUTION - timedelta(seconds=1)
    )
    client.get("/api/v1/auth/me/")
    assert get_token_model().objects.get(user=user).last_used_at > first


def test_signing_a_device_out(user, other_user):
    phone = make_token(user, "Phone")
    laptop = make_token(user, "Laptop")
    theirs = make_token(other_user, "Theirs")
    laptop_client = client_for(laptop)
    phone_id = next(
        d["id"] for d in laptop_client.get(DEVICES).json()["results"] if d["device_name"] == "Phone"
    )
    their_id = client_for(theirs).get(DEVICES).json()["results"][0]["id"]
    # Someone else's device, or one that does not exist: not found, nothing revoked.
    assert_error(laptop_client.delete(f"{DEVICES}{their_id}/"), 404, "NOT_FOUND")
    assert_error(laptop_client.delete(f"{DEVICES}{uuid.uuid4()}/"), 404, "NOT_FOUND")
    assert client_for(theirs).get("/api/v1/auth/me/").status_code == 200
    assert laptop_client.delete(f"{DEVICES}{phone_id}/").status_code == 204
    assert client_for(phone).get("/api/v1/auth/me/").status_code == 401
    assert [d["device_name"] for d in laptop_client.get(DEVICES).json()["results"]] == ["Laptop"]
    assert_error(laptop_client.delete(f"{DEVICES}{phone_id}/"), 404, "NOT_FOUND")


def test_push_credentials_belong_to_the_device(user):
    phone = make_token(user, "Phone")
    client = client_for(phone)
    response = client.put(
        PUSH, {"platform": "webpush", "subscription": SUBSCRIPTION}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["platform"] == "webpush"
    credential = PushCredential.objects.get()
    assert credential.data == SUBSCRIPTION and credential.user_id == user.pk
    assert client.get(DEVICES).json()["results"][0]["push_platform"] == "webpush"
    # Registering again replaces it.
    client.put(PUSH, {"platform": "fcm", "token": "fcm-token-1"}, format="json")
    assert PushCredential.objects.get().data == {"token": "fcm-token-1"}
    assert client.delete(PUSH).status_code == 204
    assert not PushCredential.objects.exists()
    client.put(PUSH, {"platform": "apns", "token": "apns-token"}, format="json")
    # Signing the device out removes its push credentials with its token.
    assert client.post("/api/v1/auth/logout/").status_code == 204
    assert not PushCredential.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "pager", "token": "x"}, "platform"),
        ({"platform": "webpush"}, "subscription"),
        (
            {"platform": "webpush", "subscription": {"endpoint": "ftp://x", "keys": {}}},
            "subscription.endpoint",
        ),
        (
            {"platform": "webpush", "subscription": {**SUBSCRIPTION, "keys": {"p256dh": "k"}}},
            "subscription.keys.auth",
        ),
        ({"platform": "apns"}, "token"),
        ({"platform": "fcm", "token": ""}, "token"),
    ],
)
def test_bad_push_credentials_are_400(user, body, field):
    response = client_for(make_token(user)).put(PUSH, body, format="json")
    assert field in assert_error(response, 400, "VALIDATION_ERROR")["fields"]
    assert not PushCredential.objects.exists()


def test_the_push_setup_gives_the_servers_web_push_key(user, settings):
    client = client_for(make_token(user))
    settings.CONFAB_VAPID_PUBLIC_KEY = ""
    assert client.get(PUSH).json() == {"webpush_public_key": None, "platform": None}
    settings.CONFAB_VAPID_PUBLIC_KEY = "BPublicKey"
    client.put(PUSH, {"platform": "webpush", "subscription": SUBSCRIPTION}, format="json")
    assert client.get(PUSH).json() == {"webpush_public_key": "BPublicKey", "platform": "webpush"}
