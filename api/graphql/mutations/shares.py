"""Create and revoke share links (conversations.shares.services)."""

from __future__ import annotations

from typing import Any

import strawberry
from channels.db import database_sync_to_async
from strawberry.types import Info

from api.graphql.context import current_user
from api.graphql.errors import with_field_errors
from api.graphql.types.shares import RevokeSharePayload, SharePayload
from conversations.selectors import get_conversation
from conversations.shares import selectors, services


@database_sync_to_async
def _create(user: Any, conversation_id: str) -> SharePayload:
    conversation = get_conversation(user=user, conversation_id=conversation_id)
    share = services.create_share(user=user, conversation=conversation)
    return SharePayload(share=share)


@database_sync_to_async
def _revoke(user: Any, conversation_id: str, share_id: str) -> RevokeSharePayload:
    share = selectors.get_share(user=user, conversation_id=conversation_id, share_id=share_id)
    revoked_id = share.pk
    services.revoke_share(share=share)
    return RevokeSharePayload(revoked_id=strawberry.ID(str(revoked_id)))


@strawberry.type
class ShareMutations:
    @strawberry.mutation(
        description="Share a conversation up to its newest message (as REST's "
        "POST /conversations/{id}/shares/): NOTHING_TO_SHARE without messages."
    )
    async def create_share(self, info: Info, conversation_id: strawberry.ID) -> SharePayload:
        user = current_user(info)
        return await with_field_errors(SharePayload, _create(user, conversation_id))

    @strawberry.mutation(description="Revoke a share link: its page and files answer 404.")
    async def revoke_share(
        self, info: Info, conversation_id: strawberry.ID, share_id: strawberry.ID
    ) -> RevokeSharePayload:
        user = current_user(info)
        return await with_field_errors(RevokeSharePayload, _revoke(user, conversation_id, share_id))
