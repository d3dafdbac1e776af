"""Search results, built from `conversations.search.payloads` (the REST shape)."""

from __future__ import annotations

from typing import Any

import strawberry

from api.graphql.types.messages import Message


@strawberry.type(description="The conversation of a search result.")
class SearchConversation:
    id: strawberry.ID
    title: str


@strawberry.type(description="A message matching a search, with its conversation.")
class SearchResult:
    conversation: SearchConversation
    message: Message
    snippet: str = strawberry.field(
        description="HTML: the text around the first match, escaped, the query's words "
        "wrapped in <mark>."
    )


@strawberry.type(description="A page of search results, best match first.")
class SearchPage:
    results: list[SearchResult]
    next_cursor: str | None = strawberry.field(description="Pass as `after` for the next page.")
    has_more: bool

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> SearchPage:
        return cls(
            results=[
                SearchResult(
                    conversation=SearchConversation(
                        id=strawberry.ID(str(result["conversation"]["id"])),
                        title=result["conversation"]["title"],
                    ),
                    message=Message.from_payload(result["message"]),
                    snippet=result["snippet"],
                )
                for result in payload["results"]
            ],
            next_cursor=payload["next_cursor"],
            has_more=payload["has_more"],
        )
