"""GraphQL over HTTP at `/graphql/`: bearer tokens only, JSON errors, size limits.

- Every operation needs `Authorization: Bearer <token>` (or `Token <token>`), the
  same knox tokens as REST; anything else is 401 (as GitHub's API). The view is
  csrf-exempt because it ignores cookies: a session never authenticates it.
- Bodies over DATA_UPLOAD_MAX_MEMORY_SIZE and documents over
  CONFAB_GRAPHQL_MAX_DOCUMENT_BYTES are refused with 413 before parsing.
- Queries and mutations by POST only; GraphiQL (GET, text/html) only in DEBUG.
- Transport errors have the GraphQL shape:
  `{"errors": [{"message", "extensions": {"code", "type"}}]}`.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from cross_web import HTTPException
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from rest_framework.exceptions import AuthenticationFailed
from strawberry.django.views import AsyncGraphQLView
from strawberry.http import GraphQLRequestData

from accounts.authentication import BearerTokenAuthentication
from api.graphql.context import GraphQLContext
from api.graphql.schema import schema
from api.graphql.sizes import (
    DOCUMENT_TOO_LARGE,
    decode_json,
    document_too_large,
    document_too_large_message,
)
from core.errors import NotAuthenticated

STATUS_CODES = {
    400: ("BAD_REQUEST", "invalid_request"),
    401: (NotAuthenticated.code, NotAuthenticated.type),
    404: ("NOT_FOUND", "not_found"),
    405: ("METHOD_NOT_ALLOWED", "invalid_request"),
    413: ("REQUEST_TOO_LARGE", "invalid_request"),
}


class GraphQLHTTPError(HTTPException):
    """An HTTP-level refusal with a stable code."""

    def __init__(self, status_code: int, reason: str, code: str | None = None) -> None:
        super().__init__(status_code, reason)
        self.code = code


def error_response(status: int, message: str, code: str | None = None) -> JsonResponse:
    default_code, error_type = STATUS_CODES.get(status, ("BAD_REQUEST", "invalid_request"))
    body = {
        "errors": [
            {"message": message, "extensions": {"code": code or default_code, "type": error_type}}
        ]
    }
    response = JsonResponse(body, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


class GraphQLView(AsyncGraphQLView):
    """strawberry's async Django view with Confab's authentication and limits."""

    user: Any = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(schema=schema, graphql_ide=None, allow_queries_via_get=False, **kwargs)

    async def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        self.graphql_ide = "graphiql" if settings.DEBUG else None
        try:
            if not self.is_ide_request(request):
                self.check_body_size(request)
                self.user = await self.authenticate(request)
            return await self.run(request=request)
        except RequestDataTooBig:
            return error_response(413, "The request body is too large.")
        except GraphQLHTTPError as error:
            return error_response(error.status_code, error.reason, error.code)
        except HTTPException as error:
            return error_response(error.status_code, error.reason)

    @staticmethod
    def is_ide_request(request: HttpRequest) -> bool:
        """A browser asking for GraphiQL (answered 404 unless DEBUG); it runs no operation."""
        return (
            request.method == "GET"
            and "text/html" in request.headers.get("Accept", "")
            and "query" not in request.GET
        )

    @staticmethod
    def check_body_size(request: HttpRequest) -> None:
        try:
            length = int(request.headers.get("Content-Length") or 0)
        except ValueError:
            raise GraphQLHTTPError(400, "Invalid Content-Length.") from None
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise GraphQLHTTPError(413, "The request body is too large.")

    @staticmethod
    async def authenticate(request: HttpRequest) -> Any:
        """The bearer token's user; 401 for a missing, invalid, expired or revoked token."""
        try:
            result = await database_sync_to_async(BearerTokenAuthentication().authenticate)(request)
        except AuthenticationFailed:
            result = None
        if result is None:
            raise GraphQLHTTPError(401, NotAuthenticated.default_detail)
        return result[0]

    def decode_json(self, data: str | bytes) -> object:
        return decode_json(data)

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        data = await super().parse_http_body(request)
        for item in data if isinstance(data, list) else [data]:
            if document_too_large(item.query):
                raise GraphQLHTTPError(413, document_too_large_message(), DOCUMENT_TOO_LARGE)
        return data

    async def get_context(self, request: HttpRequest, response: Any) -> GraphQLContext:
        context = GraphQLContext(request=request, response=response)
        if self.user is not None:
            context.user = self.user
        return context
