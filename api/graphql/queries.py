"""Root query fields. Each resolver: the caller, one selector call, one conversion."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from channels.db import database_sync_to_async
from django.conf import settings
from strawberry.types import Info

from accounts import selectors as account_selectors
from accounts.models import AccessToken
from api.graphql.context import current_user
from api.graphql.pagination import (
    conversation_connection,
    conversation_cursor,
    message_connection,
    message_window,
)
from api.graphql.types.agents import Agent, LanguageModel
from api.graphql.types.approvals import ToolApproval
from api.graphql.types.connections import ConversationConnection, MessageConnection
from api.graphql.types.conversations import Conversation
from api.graphql.types.devices import Device
from api.graphql.types.projects import Project
from api.graphql.types.search import SearchPage
from api.graphql.types.shares import Share
from api.graphql.types.sync import ChangeFeed
from api.graphql.types.usage import Quota, UsageGroupBy, UsageReport
from api.graphql.types.users import User
from conversations import inputs, selectors
from conversations.approvals.selectors import pending_tool_calls
from conversations.exports import documents as export_documents
from conversations.llm.registry import model_payload
from conversations.payloads import tool_approval_payload
from conversations.projects import selectors as project_selectors
from conversations.search.inputs import parse_search_request
from conversations.search.payloads import search_page_payload
from conversations.search.selectors import search_messages
from conversations.shares import selectors as share_selectors
from conversations.sync import selectors as sync_selectors
from conversations.usage.inputs import parse_usage_query
from conversations.usage.selectors import quota_payload, quota_state, usage_report

# GraphQL calls the title search `search` (REST: `q`).
NAMES = {"q": "search"}


@strawberry.type
class Query:
    @strawberry.field(description="The authenticated user.")
    def me(self, info: Info) -> User:
        return User.from_model(current_user(info))

    @strawberry.field(description="The agents a conversation can be created with.")
    async def agents(self, info: Info) -> list[Agent]:
        current_user(info)
        return [Agent.from_model(agent) async for agent in selectors.list_agents()]

    @strawberry.field(
        description="The models a conversation can run with (updateConversation `model`)."
    )
    async def models(self, info: Info) -> list[LanguageModel]:
        current_user(info)
        return [
            LanguageModel.from_payload(model_payload(row)) async for row in selectors.list_models()
        ]

    @strawberry.field(
        description=(
            "The user's conversations, newest activity first. `first`: page size "
            "(default CONFAB_DEFAULT_PAGE_SIZE, at most CONFAB_MAX_PAGE_SIZE); `after`: a "
            "pageInfo.endCursor; `archived`: only archived (true) or only active (false); "
            "`agent`: an agent slug; `search`: in titles; `project`: a project id, or "
            "`none` for those in no project. Pinned conversations come first."
        )
    )
    async def conversations(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        archived: bool | None = None,
        agent: str | None = None,
        search: str | None = None,
        project: str | None = None,
    ) -> ConversationConnection:
        user = current_user(info)
        size = inputs.parse_limit(first, field="first")
        filters = {"archived": archived, "agent": agent, "q": search, "project": project}
        page = await database_sync_to_async(selectors.conversation_page)(
            user=user, cursor=conversation_cursor(after), size=size, filters=filters, names=NAMES
        )
        return conversation_connection(page, after=after, user=user, filters=filters)

    @strawberry.field(
        description="The user's projects, oldest first. `first`: page size; `after`: the "
        "last project's id."
    )
    async def projects(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> list[Project]:
        user = current_user(info)
        page = await database_sync_to_async(project_selectors.project_page)(
            user=user,
            size=inputs.parse_limit(first, field="first"),
            after_id=inputs.parse_id_cursor(after, field="after", of="project"),
        )
        return page.results

    @strawberry.field(
        description="The share links of one of the user's conversations, newest first."
    )
    async def shares(self, info: Info, conversation_id: strawberry.ID) -> list[Share]:
        user = current_user(info)
        return await database_sync_to_async(share_selectors.shares_of_conversation)(
            user=user, conversation_id=conversation_id
        )

    @strawberry.field(description="One of the user's projects (NOT_FOUND otherwise).")
    async def project(self, info: Info, id: strawberry.ID) -> Project:
        user = current_user(info)
        return await database_sync_to_async(project_selectors.get_project)(user=user, project_id=id)

    @strawberry.field(
        description=(
            "Full-text search over the user's messages, best match first (as REST's "
            '/api/v1/search/). `query`: words (all must match), "quoted phrases", -excluded, '
            "`or`; Korean, Chinese and Japanese match from two characters on. `first`: page "
            "size; `after`: a nextCursor; filters: `agent` (slug), `project` (id or `none`), "
            "`role`, `since` / `until` (ISO dates or date-times)."
        )
    )
    async def search(
        self,
        info: Info,
        query: str,
        first: int | None = None,
        after: str | None = None,
        agent: str | None = None,
        project: str | None = None,
        role: str | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> SearchPage:
        user = current_user(info)
        request = parse_search_request(
            q=query,
            limit=first,
            cursor=after,
            agent=agent,
            project=project,
            role=role,
            since=since,
            until=until,
            query_field="query",
            limit_field="first",
            cursor_field="after",
        )
        page = await database_sync_to_async(search_messages)(user=user, request=request)
        return SearchPage.from_payload(search_page_payload(page))

    @strawberry.field(
        description=(
            "The user's model usage (tokens and cost), per UTC day, model or conversation, "
            "with totals (as REST's /api/v1/usage/). `from` / `to`: UTC days (YYYY-MM-DD, "
            "inclusive; default this month up to today)."
        )
    )
    async def usage(
        self,
        info: Info,
        from_: Annotated[str | None, strawberry.argument(name="from")] = None,
        to: str | None = None,
        group_by: UsageGroupBy = UsageGroupBy.DAY,
    ) -> UsageReport:
        user = current_user(info)
        query = parse_usage_query(start=from_, end=to, group_by=group_by.value)
        report = await database_sync_to_async(usage_report)(
            user=user, start=query.start, end=query.end, group_by=query.group_by
        )
        return UsageReport.from_payload(report)

    @strawberry.field(
        description="What is left of the user's usage quota (as REST's /api/v1/usage/quota/)."
    )
    async def quota(self, info: Info) -> Quota:
        user = current_user(info)
        state = await database_sync_to_async(quota_state)(user.pk)
        return Quota.from_payload(quota_payload(state))

    @strawberry.field(description="One of the user's conversations (NOT_FOUND otherwise).")
    async def conversation(self, info: Info, id: strawberry.ID) -> Conversation:
        return await selectors.aget_conversation(user=current_user(info), conversation_id=id)

    @strawberry.field(
        description=(
            "One of the user's conversations exported as a string (NOT_FOUND otherwise): "
            '`format` "json" (the document `POST /api/v1/conversations/import/` reads) or '
            '"markdown". Larger than the response limit: EXPORT_TOO_LARGE (REST streams '
            "it: GET /api/v1/conversations/{id}/export/)."
        )
    )
    async def export_conversation(self, info: Info, id: strawberry.ID, format: str = "json") -> str:
        user = current_user(info)
        return await database_sync_to_async(_export_text)(user, id, format)

    @strawberry.field(
        description=(
            "A page of a conversation's history, oldest first, keyset on message ids. Default: "
            "the newest page. `last`/`before`: the page older than `before`; `first`/`after`: "
            "the page newer than `after` (`first` alone: from the oldest message)."
        )
    )
    async def messages(
        self,
        info: Info,
        conversation_id: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> MessageConnection:
        user = current_user(info)
        page_request = await selectors.aparse_for_conversation(
            lambda: message_window(first=first, after=after, last=last, before=before),
            user=user,
            conversation_id=conversation_id,
        )
        conversation_pk = inputs.parse_object_id(conversation_id)
        page = await database_sync_to_async(selectors.user_message_page)(
            user=user, conversation_id=conversation_pk, request=page_request
        )
        return message_connection(page, conversation_pk)

    @strawberry.field(
        description=(
            "What changed since a cursor (the changes feed, as REST's /api/v1/sync/). Without "
            "`after`: no changes and the current cursor. `first`: changes per page (default "
            "100, at most CONFAB_SYNC_MAX_PAGE_SIZE). A cursor older than the retention is "
            "SYNC_CURSOR_EXPIRED: load everything again."
        )
    )
    async def changes(
        self, info: Info, after: str | None = None, first: int | None = None
    ) -> ChangeFeed:
        user = current_user(info)
        cursor, size = inputs.parse_sync_request(
            cursor=after, limit=first, cursor_field="after", limit_field="first"
        )
        page = await database_sync_to_async(sync_selectors.changes_page)(
            user=user, after=cursor, size=size
        )
        return ChangeFeed.from_page(page)

    @strawberry.field(
        description="The user's signed-in devices (tokens), newest first, as REST's "
        "/api/v1/auth/tokens/. `current` marks the token of this request (HTTP)."
    )
    async def devices(self, info: Info) -> list[Device]:
        user = current_user(info)
        return await database_sync_to_async(_devices)(user)

    @strawberry.field(
        description="The tool calls of a conversation that wait for the user's approval "
        "(approveToolCall / denyToolCall), oldest first; as REST's tool-calls/."
    )
    async def pending_tool_calls(
        self, info: Info, conversation_id: strawberry.ID
    ) -> list[ToolApproval]:
        user = current_user(info)
        payloads = await database_sync_to_async(_pending_tool_calls)(user, conversation_id)
        return [ToolApproval.from_payload(payload) for payload in payloads]


def _pending_tool_calls(user: Any, conversation_id: Any) -> list[dict[str, Any]]:
    return [
        tool_approval_payload(call)
        for call in pending_tool_calls(user=user, conversation_id=conversation_id)
    ]


def _export_text(user: Any, conversation_id: Any, kind: str) -> str:
    conversation = selectors.get_conversation(user=user, conversation_id=conversation_id)
    return export_documents.export_text(
        conversation, kind=kind, limit=settings.CONFAB_GRAPHQL_MAX_RESPONSE_BYTES // 2
    )


def _devices(user: Any) -> list[AccessToken]:
    return list(account_selectors.devices_of(user))
