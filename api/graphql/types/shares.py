"""Share links, built from `conversations.shares.payloads.share_payload`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from api.graphql.types.errors import FieldError
from api.graphql.types.messages import parse_timestamp
from api.graphql.types.payloads import ERRORS_DESCRIPTION
from conversations.shares.models import Share as ShareModel
from conversations.shares.payloads import share_payload


def origin(info: Info) -> str:
    """`scheme://host` of an HTTP request (a share's `url` is absolute); over a
    websocket, nothing: the url is then the path."""
    request = info.context.request
    if hasattr(request, "build_absolute_uri"):
        return request.build_absolute_uri("/").rstrip("/")
    return ""


@strawberry.type(
    description="A share link: whoever opens `url` reads the conversation up to "
    "`upToMessageId` (never later messages), until it is revoked."
)
class Share:
    id: strawberry.ID
    conversation_id: strawberry.ID
    token: str = strawberry.field(description="192 random bits: the link's only permission.")
    url: str = strawberry.field(description="The web app's page of the share.")
    up_to_message_id: strawberry.ID = strawberry.field(
        description="The newest message the share shows."
    )
    created_at: datetime

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Share:
        return cls(
            id=strawberry.ID(str(payload["id"])),
            conversation_id=strawberry.ID(str(payload["conversation"])),
            token=payload["token"],
            url=payload["url"],
            up_to_message_id=strawberry.ID(str(payload["up_to_message_id"])),
            created_at=parse_timestamp(payload["created_at"]),  # type: ignore[arg-type]
        )

    @classmethod
    def from_model(cls, share: ShareModel, info: Info) -> Share:
        return cls.from_payload(share_payload(share, origin=origin(info)))


@strawberry.type
class SharePayload:
    share: Share | None = None
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )


@strawberry.type
class RevokeSharePayload:
    revoked_id: strawberry.ID | None = None
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )
