"""Share links: `/api/v1/conversations/{id}/shares/` (the owner's list, create, revoke)
and `/api/v1/shared/{token}/` (anyone holding the token reads the snapshot)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from api.rest.serializers import ErrorSerializer
from api.rest.share_serializers import (
    SharedConversationSerializer,
    ShareListSerializer,
    ShareSerializer,
)
from api.rest.throttles import SharedThrottle
from api.rest.views.base import ConfabView
from api.rest.views.files import CONTENT_RESPONSES, content_response
from conversations.selectors import get_conversation
from conversations.shares import selectors, services

# Search engines must not list a shared conversation (the page says so too).
NOINDEX = {"X-Robots-Tag": "noindex, nofollow"}
TOKEN_PARAMETER = OpenApiParameter(
    "token",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    pattern=r"^[A-Za-z0-9_-]{1,64}$",
    description="The share's `token`.",
)


def origin(request: Request) -> str:
    """`scheme://host` of the request: a share's `url` is absolute."""
    return request.build_absolute_uri("/").rstrip("/")


class ShareListView(ConfabView):
    @extend_schema(
        operation_id="shares_list",
        tags=["shares"],
        summary="The conversation's share links, newest first",
        responses={200: ShareListSerializer},
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        shares = selectors.shares_of_conversation(
            user=request.user, conversation_id=conversation_id
        )
        serializer = ShareSerializer(shares, many=True, context={"origin": origin(request)})
        return Response({"results": serializer.data})

    @extend_schema(
        operation_id="shares_create",
        tags=["shares"],
        summary="Share the conversation up to its newest message",
        description="A read-only snapshot: the link shows the messages up to the newest one "
        "now (`up_to_message_id`); later messages never appear. Messages deleted later "
        "(clear, regenerate) disappear from it. No body.",
        request=None,
        responses={
            201: ShareSerializer,
            (409, "application/json"): OpenApiResponse(
                ErrorSerializer,
                description="NOTHING_TO_SHARE: no messages yet; SHARE_LIMIT_REACHED: "
                f"{services.MAX_SHARES_PER_CONVERSATION} links exist.",
            ),
        },
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        conversation = get_conversation(user=request.user, conversation_id=conversation_id)
        share = services.create_share(user=request.user, conversation=conversation)
        return Response(ShareSerializer(share, context={"origin": origin(request)}).data, 201)


class ShareDetailView(ConfabView):
    @extend_schema(
        operation_id="shares_destroy",
        tags=["shares"],
        summary="Revoke a share link",
        description="Its page, `GET /api/v1/shared/{token}/` and its file URLs answer 404.",
        responses={204: None},
    )
    def delete(self, request: Request, conversation_id: int, share_id: int) -> Response:
        share = selectors.get_share(
            user=request.user, conversation_id=conversation_id, share_id=share_id
        )
        services.revoke_share(share=share)
        return Response(status=204)


class SharedConversationView(ConfabView):
    # The token is the permission: no sign-in, its own per-IP rate limit.
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [SharedThrottle]

    @extend_schema(
        operation_id="shared_retrieve",
        tags=["shares"],
        summary="Read a shared conversation (no token needed)",
        description="The messages up to the share's `up_to_message_id`, oldest first, "
        "without system messages; `after`/`limit` page forward. An unknown or revoked "
        "token is 404. Answers carry `X-Robots-Tag: noindex`.",
        auth=[],
        parameters=[
            TOKEN_PARAMETER,
            OpenApiParameter("after", OpenApiTypes.INT, description="`newer_cursor`."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="Page size (default 50)."),
        ],
        responses={200: SharedConversationSerializer},
    )
    def get(self, request: Request, token: str) -> Response:
        share = selectors.share_by_token(token)
        params = request.query_params
        page = selectors.shared_page(
            share=share, after=params.get("after"), limit=params.get("limit")
        )
        return Response(SharedConversationSerializer(page).data)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in NOINDEX.items():  # errors too
            response[name] = value
        return response


class SharedFileView(ConfabView):
    # The signature names the share: the URL dies with it.
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        operation_id="shared_file_content",
        tags=["shares"],
        summary="A shared conversation's file (an attachment's `url` in a share)",
        description="No token: the URL is signed for the share, and answers 404 once the "
        "share is revoked or the URL expired (CONFAB_FILE_URL_TTL).",
        auth=[],
        parameters=[
            OpenApiParameter(
                "token",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                pattern=r"^[A-Za-z0-9_:-]{1,200}$",
                description="The signed part of a shared attachment's `url`.",
            )
        ],
        responses=CONTENT_RESPONSES,
    )
    def get(self, request: Request, token: str) -> Any:
        file = selectors.shared_file(token)
        response = content_response(request, file, cache_seconds=0)
        response["X-Robots-Tag"] = NOINDEX["X-Robots-Tag"]
        return response
