"""The GraphQL schema (`schema.graphql` at the root is exported from it: `make schema`)."""

from __future__ import annotations

import logging
from datetime import datetime

import strawberry
from graphql import GraphQLError
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from api.graphql.extensions import EXTENSIONS
from api.graphql.mutations import Mutation
from api.graphql.queries import Query
from api.graphql.subscriptions import Subscription
from conversations.errors import ApplicationError
from conversations.payloads import iso_timestamp

logger = logging.getLogger("api.graphql")


class ConfabSchema(strawberry.Schema):
    """Logs only unexpected errors: client errors (validation, NOT_FOUND, conflicts) are
    answers, not incidents."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            original = error.original_error
            if original is None or isinstance(original, ApplicationError | GraphQLError):
                continue
            logger.error("GraphQL resolver failed: %s", error.path, exc_info=original)


# Timestamps read as on REST and in events (`...Z`, not `+00:00`): one format a client
# parses whatever surface it reads.
DateTime = strawberry.scalar(
    name="DateTime",
    description="Date with time (ISO 8601, UTC, ending in Z).",
    serialize=iso_timestamp,
    parse_value=datetime.fromisoformat,
)

schema = ConfabSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=EXTENSIONS,
    config=StrawberryConfig(scalar_map={datetime: DateTime}),
)
