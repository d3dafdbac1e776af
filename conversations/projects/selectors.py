"""Reads of projects: owner-scoped lookups and the keyset-paged list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from conversations.inputs import ObjectId, parse_object_id
from conversations.projects.models import Project
from core.errors import NotFound


def projects_of(user: Any) -> QuerySet[Project]:
    """The user's own projects, default agent joined."""
    if not getattr(user, "is_authenticated", False):
        return Project.objects.none()
    return Project.objects.filter(user_id=user.pk).select_related("default_agent")


def get_project(*, user: Any, project_id: ObjectId) -> Project:
    """The user's project, or NotFound (also for another user's: named in a conversation's
    `project` too, someone else's project is "not found", never a field error that would
    tell it exists)."""
    pk = parse_object_id(project_id)
    project = projects_of(user).filter(pk=pk).first()
    if project is None:
        raise NotFound("Project not found.")
    return project


@dataclass
class ProjectPage:
    results: list[Project]
    next_cursor: str | None
    has_more: bool


def project_page(*, user: Any, size: int, after_id: int | None = None) -> ProjectPage:
    """One page of the user's projects, oldest first, keyset on id."""
    queryset = projects_of(user).order_by("id")
    if after_id is not None:
        queryset = queryset.filter(id__gt=after_id)
    rows = list(queryset[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return ProjectPage(
        results=rows,
        next_cursor=str(rows[-1].pk) if has_more else None,
        has_more=has_more,
    )
