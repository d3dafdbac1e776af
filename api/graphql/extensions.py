"""Schema extensions: the one ApplicationError mapping, and the safety limits.

Limits are read from settings on every operation (so a deployment, or a test,
changes them without rebuilding the schema):
- CONFAB_GRAPHQL_MAX_DEPTH and CONFAB_GRAPHQL_MAX_ALIASES (`validation_rules`:
  strawberry's limiters' answers in linear time), CONFAB_GRAPHQL_MAX_TOKENS
  (MaxTokensLimiter: the parser stops counting there, so a huge document costs
  no more than that);
- introspection only when CONFAB_GRAPHQL_INTROSPECTION (default: DEBUG), and
  without it no "Did you mean ...?" in any error (`Validation`);
- CONFAB_GRAPHQL_MAX_COST: what the answer can hold (`cost.operation_cost`), refused
  before the operation runs (`QueryCost`);
- the per-user request rate REST spends, one per operation and one per mutation
  field (`RequestBudget`);
- CONFAB_GRAPHQL_MAX_RESPONSE_BYTES: an answer larger than that is withheld
  (`ResponseSize`).
The document and request sizes are limited by the transports (views, consumers).
Every limit holds on every transport: HTTP, graphql-transport-ws and graphql-ws.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from graphql import GraphQLError, GraphQLSyntaxError, validate
from graphql.validation import NoSchemaIntrospectionCustomRule
from redis.exceptions import RedisError
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule
from strawberry.types.execution import StreamExecutionResult
from strawberry.types.graphql import OperationType

from api.graphql.cost import json_size, mutation_field_count, operation_cost
from api.graphql.errors import error_extensions
from api.graphql.sizes import QueryCostExceeded, ResponseTooLarge
from api.graphql.validation_rules import alias_rule, depth_rule
from api.rest.throttles import spend_user_requests
from core.errors import ApplicationError, RateLimited, ServiceUnavailable

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


def schema_is_private() -> bool:
    """Whether the schema is kept from clients (CONFAB_GRAPHQL_INTROSPECTION off)."""
    return not settings.CONFAB_GRAPHQL_INTROSPECTION


class IntrospectionGate(SchemaExtension):
    """Refuse `__schema` / `__type` unless CONFAB_GRAPHQL_INTROSPECTION."""

    def on_operation(self) -> Iterator[None]:
        if schema_is_private():
            self.execution_context.validation_rules = (
                *self.execution_context.validation_rules,
                NoSchemaIntrospectionCustomRule,
            )
        yield


class Validation(SchemaExtension):
    """Validate the document first (before the limits below, which measure only valid
    documents), with strawberry's rules and the limits' rules, and with graphql-core's
    `hide_suggestions` while the schema is private: no error then suggests a name of the
    schema (fields, arguments, types, enum values, input fields), which would hand the
    schema out one typo at a time. Values coerced at execution (variables) are covered
    by `schema.SchemaPrivateExecutionContext`.

    Not strawberry's `disable_field_suggestions`: it removes only field suggestions, and
    is fixed when the schema is built rather than following the setting."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.pre_execution_errors is None and context.graphql_document is not None:
            # strawberry's `validate_document` (the same rules), with hide_suggestions;
            # strawberry skips its own validation when errors (or none) are set.
            context.pre_execution_errors = validate(
                context.schema._schema,
                context.graphql_document,
                (*context.validation_rules, MaybeNullValidationRule, OneOfInputValidationRule),
                hide_suggestions=schema_is_private(),
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


def refuse(context: Any, error: ApplicationError) -> None:
    """Refuse an operation before it runs: its only error, answered by strawberry as a
    validation error on every transport (graphql-transport-ws: an `error` message)."""
    context.pre_execution_errors = [
        GraphQLError(error.detail, original_error=error, extensions=error_extensions(error))
    ]


class RequestBudget(SchemaExtension):
    """Every operation spends the caller's per-user request budget, the one REST requests
    spend (CONFAB_THROTTLE_USER, `api.rest.throttles.spend_user_requests`): one
    request, or one per mutation field (30 aliased mutations are 30 requests). Past
    the rate the operation is refused whole before it runs, with RATE_LIMITED and
    `retryAfter` (over HTTP: 429 and Retry-After). A document that fails to parse or
    validate spends one request too, as a REST 400 does."""

    async def on_operation(self) -> AsyncIterator[None]:
        self.spent = False
        yield
        if not self.spent:
            await self._spend(1)

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        hits = max(1, mutation_field_count(context.graphql_document, context.operation_name))
        decision = await self._spend(hits)
        if decision is not None and not decision.allowed:
            retry_after = max(1, math.ceil(decision.wait))
            self._answer_429(retry_after)
            refuse(
                context,
                RateLimited("Too many requests; retry later.", extra={"retry_after": retry_after}),
            )
        yield

    async def _spend(self, hits: int) -> Any:
        self.spent = True
        user = getattr(self.execution_context.context, "user", None)
        if not getattr(user, "is_authenticated", False):
            return None
        return await sync_to_async(spend_user_requests)(user, hits)

    def _answer_429(self, retry_after: int) -> None:
        context = self.execution_context.context
        response = getattr(context, "response", None)
        if getattr(context, "ws", None) is None and response is not None:
            response.status_code = 429
            response["Retry-After"] = str(retry_after)


class QueryCost(SchemaExtension):
    """Refuse a valid operation whose answer could hold more than CONFAB_GRAPHQL_MAX_COST
    objects (`cost.operation_cost`), before it runs. Not a validation rule: page sizes
    may come from variables, which rules do not see."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.pre_execution_errors == [] and context.graphql_document is not None:
            cost = operation_cost(
                context.schema._schema,
                context.graphql_document,
                context.operation_name,
                context.variables,
                default_page=settings.CONFAB_DEFAULT_PAGE_SIZE,
                max_page=settings.CONFAB_MAX_PAGE_SIZE,
            )
            if cost > settings.CONFAB_GRAPHQL_MAX_COST:
                refuse(context, QueryCostExceeded.of(cost, settings.CONFAB_GRAPHQL_MAX_COST))
        yield


def withhold_if_too_large(result: Any) -> None:
    """Replace a result's data with RESPONSE_TOO_LARGE when its JSON would be larger than
    CONFAB_GRAPHQL_MAX_RESPONSE_BYTES (in place; measured before anything is encoded)."""
    data = getattr(result, "data", None)
    if data is None:
        return
    limit = settings.CONFAB_GRAPHQL_MAX_RESPONSE_BYTES
    if json_size(data, limit) > limit:
        error = ResponseTooLarge.of(limit)
        result.data = None
        result.errors = [
            GraphQLError(error.detail, original_error=error, extensions=error_extensions(error))
        ]


class ResponseSize(SchemaExtension):
    """Withhold an answer larger than CONFAB_GRAPHQL_MAX_RESPONSE_BYTES: the bound on
    what one operation sends, whatever its cost allowed (a row's text or context can be
    long). A mutation's changes are kept; only its answer is withheld."""

    def on_operation(self) -> Iterator[None]:
        yield
        withhold_if_too_large(self.execution_context.result)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        withhold_if_too_large(result)
        yield


def depth_limiter() -> SchemaExtension:
    # Not strawberry's QueryDepthLimiter: it is exponential in nested fragment spreads.
    return AddValidationRules([depth_rule(settings.CONFAB_GRAPHQL_MAX_DEPTH)])


def alias_limiter() -> SchemaExtension:
    # Not strawberry's MaxAliasesLimiter, for the same reason (validation_rules).
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
    # After the extensions that add validation rules (on_operation), in this order:
    # validate, then spend the rate, then measure the cost (on_validate).
    Validation,
    RequestBudget,
    QueryCost,
    ResponseSize,
]
