"""Relay-style connections (GitHub's shape: edges, nodes, pageInfo, totalCount).

`totalCount` is a resolver: nothing is counted unless a client selects it.
"""

from __future__ import annotations

from typing import Any

import strawberry
from channels.db import database_sync_to_async

from api.graphql.types.conversations import Conversation
from api.graphql.types.messages import Message
from conversations import selectors


@strawberry.type(description="Where a page sits in its list (Relay).")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class ConversationEdge:
    cursor: str
    node: Conversation


@strawberry.type(
    description="A page of conversations, newest activity first. Page on with `after: endCursor`."
)
class ConversationConnection:
    edges: list[ConversationEdge]
    page_info: PageInfo

    user: strawberry.Private[Any]
    filters: strawberry.Private[dict[str, Any]]

    @strawberry.field(description="The edges' nodes, for clients that need no cursors.")
    def nodes(self) -> list[Conversation]:
        return [edge.node for edge in self.edges]

    @strawberry.field(description="How many conversations match the filters (one COUNT query).")
    async def total_count(self) -> int:
        queryset = await database_sync_to_async(selectors.filter_conversations)(
            user=self.user, filters=self.filters
        )
        return await queryset.acount()


@strawberry.type
class MessageEdge:
    cursor: str
    node: Message


@strawberry.type(
    description=(
        "A page of a conversation's history, oldest first. `hasPreviousPage`: older messages "
        "exist (page back with `last`/`before: startCursor`); `hasNextPage`: newer ones exist "
        "(page on with `first`/`after: endCursor`)."
    )
)
class MessageConnection:
    edges: list[MessageEdge]
    page_info: PageInfo
    conversation_id: strawberry.Private[int]

    @strawberry.field(description="The edges' nodes, for clients that need no cursors.")
    def nodes(self) -> list[Message]:
        return [edge.node for edge in self.edges]

    @strawberry.field(
        description="Messages in the conversation (its stored counter: no COUNT query)."
    )
    async def total_count(self) -> int:
        # Read only when selected: the page itself needs no conversation row. The
        # page query already checked that the conversation is the user's.
        return await selectors.amessage_count(conversation_id=self.conversation_id)
