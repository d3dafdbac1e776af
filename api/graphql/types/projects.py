"""Projects, built from `payloads.project_payload`, and their mutation payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from api.graphql.types.errors import FieldError
from api.graphql.types.messages import parse_timestamp
from api.graphql.types.payloads import ERRORS_DESCRIPTION
from conversations import models
from conversations.payloads import project_payload


@strawberry.type(description="A folder of conversations whose turns get its instructions.")
class Project:
    id: strawberry.ID
    name: str
    instructions: str = strawberry.field(
        description="Added to the system prompt of every turn of its conversations."
    )
    default_agent: str | None = strawberry.field(
        description="Slug of the agent a conversation created in it starts with by default."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Project:
        return cls(
            id=strawberry.ID(str(payload["id"])),
            name=payload["name"],
            instructions=payload["instructions"],
            default_agent=payload["default_agent"],
            created_at=parse_timestamp(payload["created_at"]),  # type: ignore[arg-type]
            updated_at=parse_timestamp(payload["updated_at"]),  # type: ignore[arg-type]
        )

    @classmethod
    def from_model(cls, project: models.Project) -> Project:
        return cls.from_payload(project_payload(project))


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
