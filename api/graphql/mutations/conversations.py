"""Create, update, archive, delete and clear conversations (conversations.services)."""

from __future__ import annotations

from typing import Any

import strawberry
from channels.db import database_sync_to_async
from strawberry.scalars import JSON
from strawberry.types import Info

from api.graphql.context import current_user
from api.graphql.errors import with_field_errors
from api.graphql.types.payloads import (
    ArchiveConversationPayload,
    ClearConversationPayload,
    CreateConversationPayload,
    DeleteConversationPayload,
    ForkConversationPayload,
    SwitchBranchPayload,
    UpdateConversationPayload,
)
from conversations import selectors, services


def _or_unset(value: Any) -> Any:
    """strawberry's UNSET (argument omitted) -> the services' UNSET (leave unchanged)."""
    return services.UNSET if value is strawberry.UNSET else value


async def _create(
    user: Any, agent: str | None, context: Any, title: str | None, project: str | None = None
) -> CreateConversationPayload:
    conversation = await database_sync_to_async(services.create_conversation)(
        user=user, agent=agent, context=context, title=title or "", project=project
    )
    return CreateConversationPayload(conversation=conversation)


async def _update(user: Any, id: str, **changes: Any) -> UpdateConversationPayload:
    conversation = await selectors.aget_conversation(user=user, conversation_id=id)
    conversation = await database_sync_to_async(services.update_conversation)(
        conversation=conversation, **{key: _or_unset(value) for key, value in changes.items()}
    )
    return UpdateConversationPayload(conversation=conversation)


async def _archive(user: Any, id: str, archived: bool) -> ArchiveConversationPayload:
    conversation = await selectors.aget_conversation(user=user, conversation_id=id)
    conversation = await database_sync_to_async(services.set_archived)(
        conversation=conversation, archived=archived
    )
    return ArchiveConversationPayload(conversation=conversation)


async def _delete(user: Any, id: str) -> DeleteConversationPayload:
    conversation = await selectors.aget_conversation(user=user, conversation_id=id)
    deleted_id = conversation.pk
    await database_sync_to_async(services.delete_conversation)(conversation=conversation)
    return DeleteConversationPayload(deleted_id=strawberry.ID(str(deleted_id)))


async def _clear(user: Any, id: str) -> ClearConversationPayload:
    conversation = await selectors.aget_conversation(user=user, conversation_id=id)
    count = await database_sync_to_async(services.clear_conversation)(conversation=conversation)
    conversation.last_message = None  # known: there are none left
    return ClearConversationPayload(conversation=conversation, deleted_message_count=count)


async def _switch_branch(user: Any, id: str, message_id: str) -> SwitchBranchPayload:
    conversation = await selectors.aget_conversation(user=user, conversation_id=id)
    switched = await database_sync_to_async(services.switch_branch)(
        conversation=conversation, message_id=message_id
    )
    return SwitchBranchPayload(conversation=switched)


async def _fork(user: Any, id: str, message_id: str) -> ForkConversationPayload:
    conversation = await selectors.aget_conversation(user=user, conversation_id=id)
    fork = await database_sync_to_async(services.fork_conversation)(
        conversation=conversation, message_id=message_id
    )
    return ForkConversationPayload(conversation=fork)


@strawberry.type
class ConversationMutations:
    @strawberry.mutation(
        description=(
            "Start a conversation with an agent. `context` sets the agent's template variables "
            "(see Agent.contextVariables); unknown or missing ones are input errors. In a "
            "`project`, `agent` defaults to the project's default agent."
        )
    )
    async def create_conversation(
        self,
        info: Info,
        agent: str | None = None,
        context: JSON | None = None,
        title: str | None = None,
        project: strawberry.ID | None = None,
    ) -> CreateConversationPayload:
        user = current_user(info)
        return await with_field_errors(
            CreateConversationPayload, _create(user, agent, context, title, project)
        )

    @strawberry.mutation(
        description="Change the title, context, archived state, project (null: none), pin, "
        "model and/or temperature; omitted arguments are left unchanged. `model`: one of "
        "`models` the agent allows (Agent.allowedModels); `temperature`: 0 to 2; null sets "
        "either back to the agent's."
    )
    async def update_conversation(
        self,
        info: Info,
        id: strawberry.ID,
        title: str | None = strawberry.UNSET,
        context: JSON | None = strawberry.UNSET,
        archived: bool | None = strawberry.UNSET,
        model: str | None = strawberry.UNSET,
        temperature: float | None = strawberry.UNSET,
        project: strawberry.ID | None = strawberry.UNSET,
        pinned: bool | None = strawberry.UNSET,
    ) -> UpdateConversationPayload:
        user = current_user(info)
        changes = {"title": title, "context": context, "archived": archived}
        changes.update(model=model, temperature=temperature, project=project, pinned=pinned)
        return await with_field_errors(UpdateConversationPayload, _update(user, id, **changes))

    @strawberry.mutation(description="Archive (default) or unarchive a conversation.")
    async def archive_conversation(
        self, info: Info, id: strawberry.ID, archived: bool = True
    ) -> ArchiveConversationPayload:
        user = current_user(info)
        return await with_field_errors(ArchiveConversationPayload, _archive(user, id, archived))

    @strawberry.mutation(description="Delete a conversation and all its messages.")
    async def delete_conversation(self, info: Info, id: strawberry.ID) -> DeleteConversationPayload:
        user = current_user(info)
        return await with_field_errors(DeleteConversationPayload, _delete(user, id))

    @strawberry.mutation(
        description="Delete every message of a conversation; a running turn is stopped."
    )
    async def clear_conversation(self, info: Info, id: strawberry.ID) -> ClearConversationPayload:
        user = current_user(info)
        return await with_field_errors(ClearConversationPayload, _clear(user, id))

    @strawberry.mutation(
        description=(
            "Show another version: the newest leaf under `messageId` (a sibling from "
            "`Message.siblings`) becomes the active leaf, and the path to it the branch that "
            "`messages` pages show (ConversationBranchChanged on every device). NOT_FOUND when "
            "the message is not in the conversation; TURN_IN_PROGRESS while a turn runs."
        )
    )
    async def switch_branch(
        self, info: Info, id: strawberry.ID, message_id: strawberry.ID
    ) -> SwitchBranchPayload:
        user = current_user(info)
        return await with_field_errors(SwitchBranchPayload, _switch_branch(user, id, message_id))

    @strawberry.mutation(
        description=(
            "Copy the active branch up to `messageId` into a new conversation of the user "
            "(same agent, context, model and project). An input error on `messageId` when it "
            "is not on the active branch; NOT_FOUND when it is not in the conversation; "
            "TURN_IN_PROGRESS while a turn runs."
        )
    )
    async def fork_conversation(
        self, info: Info, id: strawberry.ID, message_id: strawberry.ID
    ) -> ForkConversationPayload:
        user = current_user(info)
        return await with_field_errors(ForkConversationPayload, _fork(user, id, message_id))
