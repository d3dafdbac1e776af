"""The per-request (HTTP) or per-connection (websocket) context of every resolver."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AnonymousUser
from strawberry.types import Info

from api.graphql.loaders import Loaders
from core.errors import NotAuthenticated


@dataclass
class GraphQLContext:
    """What resolvers may use: the authenticated user, the websocket consumer, loaders.

    `user` is set by the HTTP view from the bearer token, or by the websocket
    consumer from its handshake or `connection_init` payload; both refuse
    anonymous callers before any resolver runs.
    """

    request: Any
    response: Any = None
    user: Any = field(default_factory=AnonymousUser)
    # The GraphQLWebsocketConsumer of a websocket operation; None over HTTP.
    ws: Any = None
    # Set by strawberry from the `connection_init` payload.
    connection_params: dict[str, Any] | None = None
    loaders: Loaders = field(default_factory=Loaders)

    def __getitem__(self, key: str) -> Any:
        # strawberry's documentation uses info.context["ws"] / ["request"].
        return getattr(self, key)


def current_user(info: Info) -> Any:
    """The authenticated caller; NotAuthenticated otherwise (defence in depth)."""
    user = info.context.user
    if not getattr(user, "is_authenticated", False):
        raise NotAuthenticated()
    return user
