"""Share links (a strawberry-django type over the model) and their mutation payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry
import strawberry_django
from strawberry.types import Info

from api.graphql.types.errors import FieldError
from api.graphql.types.payloads import ERRORS_DESCRIPTION
from conversations.shares.models import Share as ShareModel
from conversations.shares.payloads import share_path


def origin(info: Info) -> str:
    """`scheme://host` of an HTTP request (a share's `url` is absolute); over a
    websocket, nothing: the url is then the path."""
    request = info.context.request
    if hasattr(request, "build_absolute_uri"):
        return request.build_absolute_uri("/").rstrip("/")
    return ""


def share_url(root: strawberry.Parent[ShareModel], info: Info) -> str:
    return f"{origin(info)}{share_path(root)}"


@strawberry_django.type(
    ShareModel,
    description="A share link: whoever opens `url` reads the conversation up to "
    "`upToMessageId` (never later messages), until it is revoked.",
)
class Share:
    """Resolved from the rows `shares.selectors` and `shares.services` give (the
    owner's), as `shares.payloads.share_payload` shapes them for REST."""

    id: strawberry.ID
    conversation_id: strawberry.ID
    token: str = strawberry_django.field(description="192 random bits: the link's only permission.")

    url: str = strawberry.field(resolver=share_url, description="The web app's page of the share.")

    up_to_message_id: strawberry.ID = strawberry_django.field(
        description="The newest message the share shows."
    )
    created_at: datetime


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
