"""What every REST view shares: parser, throttles, schema, error rendering."""

from __future__ import annotations

from typing import Any

from adrf.views import APIView as AsyncAPIViewBase
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.rest.parsers import LimitedJSONParser
from api.rest.renderers import EventStreamRenderer
from api.rest.schema import ConfabAutoSchema
from api.rest.throttles import TurnsThrottle, UserThrottle


def validated(serializer_class: type, data: Any) -> dict[str, Any]:
    """The validated request body, or a ValidationError naming each bad field."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ApiView(APIView):
    """A synchronous REST endpoint (reads and writes that do not wait on a turn)."""

    parser_classes = [LimitedJSONParser]
    throttle_classes = [UserThrottle]
    schema = ConfabAutoSchema()


class AsyncApiView(AsyncAPIViewBase):
    """An async REST endpoint (adrf): waiting for or streaming a turn holds no thread.

    Negotiates `text/event-stream` besides JSON; every response that is not an
    event stream (results, errors) is JSON whatever the Accept header asked.
    POST also counts against the `turns` rate.
    """

    parser_classes = [LimitedJSONParser]
    renderer_classes = [*APIView.renderer_classes, EventStreamRenderer]
    throttle_classes = [UserThrottle]
    turn_methods: frozenset[str] = frozenset({"POST"})
    schema = ConfabAutoSchema()

    def get_throttles(self) -> list[Any]:
        throttles = super().get_throttles()
        if self.request.method in self.turn_methods:
            throttles.append(TurnsThrottle())
        return throttles

    def wants_event_stream(self, request: Request) -> bool:
        renderer = getattr(request, "accepted_renderer", None)
        return isinstance(renderer, EventStreamRenderer)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(response, Response) and self.wants_event_stream(request):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
