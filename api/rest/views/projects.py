"""`/api/v1/projects/`: list, create, read, change, delete the user's projects."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api.rest.project_serializers import (
    ProjectCreateSerializer,
    ProjectPageSerializer,
    ProjectSerializer,
    ProjectUpdateSerializer,
)
from api.rest.views.base import ConfabView, validated
from conversations import inputs
from conversations.projects import selectors, services

FIELDS = ("name", "instructions", "default_agent")


class ProjectListView(ConfabView):
    @extend_schema(
        operation_id="projects_list",
        tags=["projects"],
        summary="List the user's projects, oldest first",
        parameters=[
            OpenApiParameter("limit", OpenApiTypes.INT, description="Page size (default 50)."),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="`next_cursor`."),
        ],
        responses={200: ProjectPageSerializer},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        page = selectors.project_page(
            user=request.user,
            size=inputs.parse_limit(params.get("limit")),
            after_id=inputs.parse_id_cursor(params.get("cursor"), field="cursor", of="project"),
        )
        return Response(ProjectPageSerializer(page).data)

    @extend_schema(
        operation_id="projects_create",
        tags=["projects"],
        summary="Create a project",
        request=ProjectCreateSerializer,
        responses={201: ProjectSerializer},
    )
    def post(self, request: Request) -> Response:
        data = validated(ProjectCreateSerializer, request.data)
        project = services.create_project(user=request.user, **data)
        return Response(ProjectSerializer(project).data, status=201)


class ProjectDetailView(ConfabView):
    @extend_schema(
        operation_id="projects_retrieve",
        tags=["projects"],
        summary="Get a project",
        responses={200: ProjectSerializer},
    )
    def get(self, request: Request, project_id: int) -> Response:
        project = selectors.get_project(user=request.user, project_id=project_id)
        return Response(ProjectSerializer(project).data)

    @extend_schema(
        operation_id="projects_update",
        tags=["projects"],
        summary="Change a project's name, instructions or default agent",
        description="Only the fields sent are changed. New instructions apply from the "
        "next turn of each of its conversations.",
        request=ProjectUpdateSerializer,
        responses={200: ProjectSerializer},
    )
    def patch(self, request: Request, project_id: int) -> Response:
        project = selectors.get_project(user=request.user, project_id=project_id)
        data = validated(ProjectUpdateSerializer, request.data)
        project = services.update_project(
            project=project, **{name: data[name] for name in FIELDS if name in data}
        )
        return Response(ProjectSerializer(project).data)

    @extend_schema(
        operation_id="projects_destroy",
        tags=["projects"],
        summary="Delete a project (its conversations stay, in no project)",
        responses={204: None},
    )
    def delete(self, request: Request, project_id: int) -> Response:
        project = selectors.get_project(user=request.user, project_id=project_id)
        services.delete_project(project=project)
        return Response(status=204)
