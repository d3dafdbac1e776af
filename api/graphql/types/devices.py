"""A signed-in device (one token), in the shape of `accounts.payloads.device_payload`,
the same as REST `/api/v1/auth/tokens/`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from api.graphql.types.errors import FieldError
from api.graphql.types.messages import parse_timestamp
from api.graphql.types.payloads import ERRORS_DESCRIPTION


@strawberry.type(description="A signed-in device: one token of the user.")
class Device:
    id: strawberry.ID
    device_name: str
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(description="To the minute.")
    expiry: datetime | None
    current: bool = strawberry.field(
        description="The device of this request (over HTTP; always false over a websocket, "
        "which is not tied to one token after it connects)."
    )
    push_platform: str | None = strawberry.field(
        description="webpush, apns or fcm when the device registered for push."
    )

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Device:
        return cls(
            id=strawberry.ID(payload["id"]),
            device_name=payload["device_name"],
            created_at=parse_timestamp(payload["created_at"]),
            last_used_at=parse_timestamp(payload["last_used_at"]),
            expiry=parse_timestamp(payload["expiry"]),
            current=payload["current"],
            push_platform=payload["push_platform"],
        )


@strawberry.type
class SignOutDevicePayload:
    signed_out_id: strawberry.ID | None = strawberry.field(
        default=None, description="The id of the device signed out."
    )
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )
