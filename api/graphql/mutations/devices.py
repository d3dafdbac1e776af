"""Sign one device out (accounts.services.revoke_device), as REST
`DELETE /api/v1/auth/tokens/{id}/`."""

from __future__ import annotations

from typing import Any

import strawberry
from channels.db import database_sync_to_async
from strawberry.types import Info

from accounts import services as accounts
from api.graphql.context import current_user
from api.graphql.errors import with_field_errors
from api.graphql.types.devices import SignOutDevicePayload


async def _sign_out(user: Any, id: str, request: Any) -> SignOutDevicePayload:
    await database_sync_to_async(accounts.revoke_device)(user=user, device_id=id, request=request)
    return SignOutDevicePayload(signed_out_id=strawberry.ID(str(id)))


@strawberry.type
class DeviceMutations:
    @strawberry.mutation(
        description="Sign a device out: its token stops working at once and its sockets "
        "close. NOT_FOUND for an id that is not one of the user's signed-in devices."
    )
    async def sign_out_device(self, info: Info, id: strawberry.ID) -> SignOutDevicePayload:
        user = current_user(info)
        request = info.context.request if info.context.ws is None else None
        return await with_field_errors(SignOutDevicePayload, _sign_out(user, id, request))
