"""`/api/v1/search/`: full-text search over the user's messages."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from api.rest.serializers import MessageSerializer, OutputSerializer
from api.rest.views.base import ConfabView
from conversations.search.inputs import parse_search_request
from conversations.search.payloads import search_page_payload
from conversations.search.selectors import search_messages


class SearchConversationSerializer(OutputSerializer):
    id = serializers.IntegerField(read_only=True)
    title = serializers.CharField(read_only=True, allow_blank=True)


class SearchResultSerializer(OutputSerializer):
    """One matching message, its conversation, and where the query matched."""

    conversation = SearchConversationSerializer(read_only=True)
    message = MessageSerializer(read_only=True)
    snippet = serializers.CharField(
        read_only=True,
        help_text="HTML: the text around the first match, escaped, the query's words "
        "wrapped in <mark>.",
    )


class SearchPageSerializer(OutputSerializer):
    """A page of search results, best match first."""

    results = SearchResultSerializer(many=True, read_only=True)
    next_cursor = serializers.CharField(
        read_only=True, allow_null=True, help_text="Pass as `cursor` for the next page."
    )
    has_more = serializers.BooleanField(read_only=True)

    def to_representation(self, page: Any) -> dict[str, Any]:
        return search_page_payload(page)


PARAMETERS = [
    OpenApiParameter(
        "q",
        OpenApiTypes.STR,
        required=True,
        description='Words (all must match), "quoted phrases", -excluded, `or`. Korean, '
        "Chinese and Japanese match from two characters on.",
    ),
    OpenApiParameter("limit", OpenApiTypes.INT, description="Page size (default 50, max 200)."),
    OpenApiParameter("cursor", OpenApiTypes.STR, description="`next_cursor` of the last page."),
    OpenApiParameter("agent", OpenApiTypes.STR, description="Only this agent's conversations."),
    OpenApiParameter(
        "project", OpenApiTypes.STR, description="A project id, or `none`: in no project."
    ),
    OpenApiParameter(
        "role",
        OpenApiTypes.STR,
        description="Only messages of this role (human, ai, tool, system).",
    ),
    OpenApiParameter(
        "since", OpenApiTypes.STR, description="Messages from this ISO date or date-time on."
    ),
    OpenApiParameter(
        "until",
        OpenApiTypes.STR,
        description="Messages before this date-time (a bare date: up to the end of that day).",
    ),
]


class SearchView(ConfabView):
    @extend_schema(
        operation_id="search",
        tags=["search"],
        summary="Search the user's messages, best match first",
        parameters=PARAMETERS,
        responses={200: SearchPageSerializer},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        search = parse_search_request(
            **{
                name: params.get(name)
                for name in ("q", "limit", "cursor", "agent", "project", "role", "since", "until")
            }
        )
        page = search_messages(user=request.user, request=search)
        return Response(SearchPageSerializer(page).data)
