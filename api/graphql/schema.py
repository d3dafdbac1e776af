"""The GraphQL schema (`schema.graphql` at the root is exported from it: `make schema`)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext

from api.graphql.extensions import EXTENSIONS, schema_is_private
from api.graphql.mutations import Mutation
from api.graphql.queries import Query
from api.graphql.subscriptions import Subscription
from core.errors import ApplicationError
from core.timestamps import iso_timestamp

logger = logging.getLogger("api.graphql")


class SchemaPrivateExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, hiding suggestions ("Did you mean ...?") from the errors of
    values coerced at execution (variables: enum values, input fields) while the schema
    is private (`extensions.Validation` does the same for validation)."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        kwargs["hide_suggestions"] = kwargs.get("hide_suggestions") or schema_is_private()
        return super().build(*args, **kwargs)


# Timestamps read as on REST and in events (`...Z`, not `+00:00`): one format a client
# parses whatever surface it reads.
DateTime = strawberry.scalar(
    name="DateTime",
    description="Date with time (ISO 8601, UTC, ending in Z).",
    serialize=iso_timestamp,
    parse_value=datetime.fromisoformat,
)


class ConfabSchema(strawberry.Schema):
    """Confab's extensions (errors, limits), scalars and executor by default. Logs only
    unexpected errors: client errors (validation, NOT_FOUND, conflicts) are answers,
    not incidents."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("extensions", EXTENSIONS)
        kwargs.setdefault("config", StrawberryConfig(scalar_map={datetime: DateTime}))
        kwargs.setdefault("execution_context_class", SchemaPrivateExecutionContext)
        super().__init__(**kwargs)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            original = error.original_error
            if original is None or isinstance(original, ApplicationError | GraphQLError):
                continue
            logger.error("GraphQL resolver failed: %s", error.path, exc_info=original)


schema = ConfabSchema(query=Query, mutation=Mutation, subscription=Subscription)
