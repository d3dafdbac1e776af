"""Projects (a strawberry-django type over the model) and their mutation payloads."""

from __future__ import annotations

from datetime import datetime

import strawberry
import strawberry_django

from api.graphql.types.errors import FieldError
from api.graphql.types.payloads import ERRORS_DESCRIPTION
from conversations import models


def default_agent_slug(root: strawberry.Parent[models.Project]) -> str | None:
    # The selectors and services give rows with the agent loaded (select_related or set).
    return root.default_agent.slug if root.default_agent_id else None


@strawberry_django.type(
    models.Project, description="A folder of conversations whose turns get its instructions."
)
class Project:
    """Resolved from the rows `projects.selectors` reads (owner-scoped, the default agent
    joined), as `payloads.project_payload` shapes them for REST."""

    id: strawberry.ID
    name: str
    instructions: str = strawberry_django.field(
        description="Added to the system prompt of every turn of its conversations."
    )

    default_agent: str | None = strawberry.field(
        resolver=default_agent_slug,
        description="Slug of the agent a conversation created in it starts with by default.",
    )
    created_at: datetime
    updated_at: datetime


@strawberry.type
class ProjectPayload:
    project: Project | None = None
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )


@strawberry.type
class DeleteProjectPayload:
    deleted_id: strawberry.ID | None = strawberry.field(
        default=None, description="The id of the deleted project."
    )
    errors: list[FieldError] = strawberry.field(
        default_factory=list, description=ERRORS_DESCRIPTION
    )
