"""`/api/v1/agents/`: the personas a conversation can use."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api.rest.serializers import AgentListSerializer, AgentSerializer
from api.rest.views.base import ConfabView
from conversations import selectors


class AgentListView(ConfabView):
    @extend_schema(
        operation_id="agents_list",
        tags=["agents"],
        summary="List the available agents",
        responses={200: AgentListSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(AgentListSerializer({"results": selectors.list_agents()}).data)


class AgentDetailView(ConfabView):
    @extend_schema(
        operation_id="agents_retrieve",
        tags=["agents"],
        summary="Get an agent, with its template variables and their defaults",
        responses={200: AgentSerializer},
    )
    def get(self, request: Request, slug: str) -> Response:
        return Response(AgentSerializer(selectors.get_agent(slug=slug)).data)
