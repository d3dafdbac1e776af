"""A signed-in device (one token): a strawberry-django type over the token model, the
same fields as `accounts.payloads.device_payload` gives REST `/api/v1/auth/tokens/`."""

from __future__ import annotations

from datetime import datetime

import strawberry
import strawberry_django
from strawberry.types import Info

from accounts.models import AccessToken
from api.graphql.types.errors import FieldError
from api.graphql.types.payloads import ERRORS_DESCRIPTION


def _current(root: strawberry.Parent[AccessToken], info: Info) -> bool:
    token = info.context.token
    return token is not None and root.pk == token.pk


def _push_platform(root: strawberry.Parent[AccessToken]) -> str | None:
    push = getattr(root, "push", None)  # `devices_of` joins it; none raises AttributeError
    return push.platform if push else None


@strawberry_django.type(AccessToken, description="A signed-in device: one token of the user.")
class Device:
    """Resolved from `accounts.selectors.devices_of` (the user's live tokens, their push
    credentials joined)."""

    id: strawberry.ID = strawberry_django.field(field_name="public_id")
    device_name: str = strawberry_django.field(field_name="name")
    created_at: datetime = strawberry_django.field(field_name="created")
    last_used_at: datetime | None = strawberry_django.field(description="To the minute.")
    expiry: datetime | None
    current: bool = strawberry.field(
        resolver=_current,
        description="The device of this request (over HTTP; always false over a websocket, "
        "which is not tied to one token after it connects).",
    )
    push_platform: str | None = strawberry.field(
        resolver=_push_platform,
        description="webpush, apns or fcm when the device registered for push.",
    )


@strawberry.type
class SignOutDevicePayload:
    signed_out_id: strawberry.ID | None = strawberry.field(
        default=None, description="The id of the device signed out."
    )
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )
