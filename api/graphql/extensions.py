"""Schema extensions: the one ApplicationError mapping, and the safety limits.

Limits are read from settings on every operation (so a deployment, or a test,
changes them without rebuilding the schema):
- CONFAB_GRAPHQL_MAX_DEPTH and CONFAB_GRAPHQL_MAX_ALIASES (`document_limits`:
  strawberry's limiters' answers in linear time), CONFAB_GRAPHQL_MAX_TOKENS
  (MaxTokensLimiter: the parser stops counting there, so a huge document costs
  no more than that);
- introspection only when CONFAB_GRAPHQL_INTROSPECTION (default: DEBUG).
The document and request sizes are limited by the transports (views, consumers).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from graphql import GraphQLError, GraphQLSyntaxError
from graphql.validation import NoSchemaIntrospectionCustomRule
from redis.exceptions import RedisError
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension
from strawberry.types.execution import StreamExecutionResult
from strawberry.types.graphql import OperationType

from api.graphql.document_limits import alias_rule, depth_rule
from api.graphql.errors import error_extensions
from conversations.errors import ApplicationError, ServiceUnavailable

logger = logging.getLogger(__name__)

INTERNAL_ERROR_MESSAGE = "Internal server error."
DATABASE_DOWN_MESSAGE = "The database is unavailable. Retry shortly."
LIVE_DOWN_MESSAGE = "Live updates are unavailable. Retry shortly."


def _classify(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, ApplicationError):
        error.extensions = error_extensions(original)
        return error
    if isinstance(original, OperationalError | InterfaceError | RedisError):
        # The database or the channel layer is unreachable: a clear, retryable answer.
        return GraphQLError(
            DATABASE_DOWN_MESSAGE if isinstance(original, DatabaseError) else LIVE_DOWN_MESSAGE,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=original,
            extensions={"code": ServiceUnavailable.code, "type": ServiceUnavailable.type},
        )
    if error.extensions and "code" in error.extensions:
        return error
    if isinstance(error, GraphQLSyntaxError):
        error.extensions = {"code": "GRAPHQL_PARSE_FAILED", "type": "invalid_request"}
        return error
    if error.path is None:
        # The document or its variables (validation, limits, coercion).
        error.extensions = {"code": "GRAPHQL_VALIDATION_FAILED", "type": "invalid_request"}
        return error
    # Raised while executing, and not an ApplicationError: a bug, not a client error.
    # Never send exception text to the client (the schema logs it).
    return GraphQLError(
        INTERNAL_ERROR_MESSAGE,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original,
        extensions={"code": "INTERNAL_SERVER_ERROR", "type": "server_error"},
    )


def classify_errors(result: object) -> None:
    """Give every error of a result its `extensions.code` (in place)."""
    errors = getattr(result, "errors", None)
    if errors:
        result.errors = [_classify(error) for error in errors]  # type: ignore[attr-defined]


class ApplicationErrors(SchemaExtension):
    """Maps ApplicationError (raised by selectors, services, turns) to GraphQL errors with
    `extensions {code, type}`, once for the whole schema and every transport."""

    def on_operation(self) -> Iterator[None]:
        yield
        classify_errors(self.execution_context.result)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        classify_errors(result)
        yield


class IntrospectionGate(SchemaExtension):
    """Refuse `__schema` / `__type` unless CONFAB_GRAPHQL_INTROSPECTION."""

    def on_operation(self) -> Iterator[None]:
        if not settings.CONFAB_GRAPHQL_INTROSPECTION:
            self.execution_context.validation_rules = (
                *self.execution_context.validation_rules,
                NoSchemaIntrospectionCustomRule,
            )
        yield


class SubscriptionsOverWebsockets(SchemaExtension):
    """Over HTTP, a subscription document is refused (400) instead of being run as a
    query: subscriptions need the websocket transport."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if getattr(context, "ws", None) is None:
            self.execution_context.allowed_operations = set(
                self.execution_context.allowed_operations
            ) - {OperationType.SUBSCRIPTION}
        yield


def depth_limiter() -> SchemaExtension:
    # Not strawberry's QueryDepthLimiter: it is exponential in nested fragment spreads.
    return AddValidationRules([depth_rule(settings.CONFAB_GRAPHQL_MAX_DEPTH)])


def alias_limiter() -> SchemaExtension:
    # Not strawberry's MaxAliasesLimiter, for the same reason (document_limits).
    return AddValidationRules([alias_rule(settings.CONFAB_GRAPHQL_MAX_ALIASES)])


def token_limiter() -> SchemaExtension:
    return MaxTokensLimiter(max_token_count=settings.CONFAB_GRAPHQL_MAX_TOKENS)


EXTENSIONS = [
    ApplicationErrors,
    SubscriptionsOverWebsockets,
    IntrospectionGate,
    token_limiter,
    depth_limiter,
    alias_limiter,
]
