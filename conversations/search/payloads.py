"""The search result shape, the same on REST and GraphQL."""

from __future__ import annotations

from typing import Any

from conversations.payloads import message_payload
from conversations.search.selectors import SearchPage, SearchResult


def search_result_payload(result: SearchResult) -> dict[str, Any]:
    return {
        "conversation": {
            "id": result.message.conversation.pk,
            "title": result.message.conversation.title,
        },
        "message": message_payload(result.message),
        "snippet": result.snippet,
    }


def search_page_payload(page: SearchPage) -> dict[str, Any]:
    return {
        "results": [search_result_payload(result) for result in page.results],
        "next_cursor": page.next_cursor,
        "has_more": page.has_more,
    }
