"""GraphQL parity for signed-in devices: `devices` and `signOutDevice` give what REST's
/api/v1/auth/tokens/ gives (one payload function, one service)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from knox.models import get_token_model

from tests.support.graphql import error_codes
from tests.support.tokens import make_token

pytestmark = pytest.mark.django_db(transaction=True)

DEVICES = """
query { devices { id deviceName createdAt lastUsedAt expiry current pushPlatform } }
"""
# A browser's PushSubscription (the keys are well-formed, the endpoint is never called).
SUBSCRIPTION = {
    "endpoint": "https://push.example.test/send/abc",
    "keys": {
        "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u"
        "-Ts1XbjhazAkj7I99e8QcYP7DkM",
        "auth": "tBHItJI5svbpez7KI4CCXg",
    },
}
SIGN_OUT = """
mutation SignOut($id: ID!) { signOutDevice(id: $id) { signedOutId errors { field } } }
"""


def rest_shape(device: dict) -> dict:
    """A GraphQL device with REST's field names (timestamps compared as given)."""
    return {
        "id": device["id"],
        "device_name": device["deviceName"],
        "created_at": device["createdAt"],
        "last_used_at": device["lastUsedAt"],
        "expiry": device["expiry"],
        "current": device["current"],
        "push_platform": device["pushPlatform"],
    }


async def test_devices_are_the_rest_list(gql, user, other_user):
    phone = await sync_to_async(make_token)(user, "Phone")
    await sync_to_async(make_token)(user, "Laptop")
    await sync_to_async(make_token)(other_user, "Not mine")
    registered = await gql.client.put(
        "/api/v1/auth/tokens/current/push/",
        json={"platform": "webpush", "subscription": SUBSCRIPTION},
        headers={"Authorization": f"Bearer {phone}"},
    )
    assert registered.status_code == 200, registered.text

    data = await gql.data(DEVICES, token=phone)
    rest = await gql.client.get(
        "/api/v1/auth/tokens/", headers={"Authorization": f"Bearer {phone}"}
    )

    assert rest.status_code == 200
    assert [rest_shape(d) for d in data["devices"]] == rest.json()["results"]
    assert [d["deviceName"] for d in data["devices"]] == ["Laptop", "Phone"]
    assert [d["current"] for d in data["devices"]] == [False, True]
    assert [d["pushPlatform"] for d in data["devices"]] == [None, "webpush"]


async def test_sign_out_device_revokes_that_token_only(gql, user, other_user):
    phone = await sync_to_async(make_token)(user, "Phone")
    laptop = await sync_to_async(make_token)(user, "Laptop")
    theirs = await sync_to_async(make_token)(other_user, "Theirs")
    devices = (await gql.data(DEVICES, token=phone))["devices"]
    laptop_id = next(d["id"] for d in devices if d["deviceName"] == "Laptop")
    their_id = (await gql.data(DEVICES, token=theirs))["devices"][0]["id"]

    data = await gql.data(SIGN_OUT, {"id": laptop_id}, token=phone)

    assert data["signOutDevice"] == {"signedOutId": laptop_id, "errors": []}
    assert (await gql.post(DEVICES, token=laptop)).status_code == 401
    assert [d["deviceName"] for d in (await gql.data(DEVICES, token=phone))["devices"]] == ["Phone"]
    # Someone else's device, an unknown id, a malformed one: NOT_FOUND, nothing revoked.
    for other in (their_id, laptop_id, "not-a-uuid"):
        body = await gql.execute(SIGN_OUT, {"id": other}, token=phone)
        assert error_codes(body) == ["NOT_FOUND"], body
    assert await sync_to_async(get_token_model().objects.filter(user=other_user).count)() == 1
