"""Create, change and delete projects (conversations.projects.services)."""

from __future__ import annotations

from typing import Any

import strawberry
from channels.db import database_sync_to_async
from strawberry.types import Info

from api.graphql.context import current_user
from api.graphql.errors import with_field_errors
from api.graphql.types.projects import DeleteProjectPayload, ProjectPayload
from conversations.projects import selectors, services


def _or_unset(value: Any) -> Any:
    return services.UNSET if value is strawberry.UNSET else value


@database_sync_to_async
def _create(user: Any, **fields: Any) -> ProjectPayload:
    return ProjectPayload(project=services.create_project(user=user, **fields))


@database_sync_to_async
def _update(user: Any, id: str, **changes: Any) -> ProjectPayload:
    project = selectors.get_project(user=user, project_id=id)
    project = services.update_project(
        project=project, **{key: _or_unset(value) for key, value in changes.items()}
    )
    return ProjectPayload(project=project)


@database_sync_to_async
def _delete(user: Any, id: str) -> DeleteProjectPayload:
    project = selectors.get_project(user=user, project_id=id)
    deleted_id = project.pk
    services.delete_project(project=project)
    return DeleteProjectPayload(deleted_id=strawberry.ID(str(deleted_id)))


@strawberry.type
class ProjectMutations:
    @strawberry.mutation(description="Create a project (defaultAgent: an agent slug).")
    async def create_project(
        self,
        info: Info,
        name: str,
        instructions: str | None = None,
        default_agent: str | None = None,
    ) -> ProjectPayload:
        user = current_user(info)
        return await with_field_errors(
            ProjectPayload,
            _create(user, name=name, instructions=instructions, default_agent=default_agent),
        )

    @strawberry.mutation(
        description="Change a project; omitted arguments are left unchanged, a null "
        "defaultAgent clears it."
    )
    async def update_project(
        self,
        info: Info,
        id: strawberry.ID,
        name: str | None = strawberry.UNSET,
        instructions: str | None = strawberry.UNSET,
        default_agent: str | None = strawberry.UNSET,
    ) -> ProjectPayload:
        user = current_user(info)
        return await with_field_errors(
            ProjectPayload,
            _update(user, id, name=name, instructions=instructions, default_agent=default_agent),
        )

    @strawberry.mutation(description="Delete a project; its conversations stay, in no project.")
    async def delete_project(self, info: Info, id: strawberry.ID) -> DeleteProjectPayload:
        user = current_user(info)
        return await with_field_errors(DeleteProjectPayload, _delete(user, id))
