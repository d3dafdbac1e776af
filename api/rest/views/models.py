"""`/api/v1/models/`: the model registry, for model pickers."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api.rest.serializers import LanguageModelListSerializer
from api.rest.views.base import ConfabView
from conversations import selectors


class ModelListView(ConfabView):
    @extend_schema(
        operation_id="models_list",
        tags=["models"],
        summary="List the models a conversation can run with",
        description="Active registry entries. A conversation may switch to one its agent "
        "allows (`allowed_models`; empty: any) with PATCH /api/v1/conversations/{id}/.",
        responses={200: LanguageModelListSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(LanguageModelListSerializer({"results": selectors.list_models()}).data)
