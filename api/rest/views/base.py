"""What every REST view shares: parser, throttles, schema, error rendering."""

from __future__ import annotations

from typing import Any

from adrf.views import APIView as AsyncAPIViewBase
from asgiref.sync import sync_to_async
from django.http import HttpResponse
from django.template.response import SimpleTemplateResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.rest.parsers import LimitedJSONParser
from api.rest.renderers import EventStreamRenderer, FastJSONRenderer
from api.rest.schema import ConfabAutoSchema
from api.rest.throttles import UserThrottle


def validated(serializer_class: type, data: Any) -> dict[str, Any]:
    """The validated request body, or a ValidationError naming each bad field."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class ConfabView(APIView):
    """A synchronous REST endpoint (reads and writes that do not wait on a turn)."""

    parser_classes = [LimitedJSONParser]
    throttle_classes = [UserThrottle]
    schema = ConfabAutoSchema()


class ConfabAsyncView(AsyncAPIViewBase):
    """An async REST endpoint (adrf): waiting for or streaming a turn holds no thread.

    Negotiates `text/event-stream` besides JSON; every response that is not an
    event stream (results, errors) is JSON whatever the Accept header asked.
    A POST that starts a turn spends the `turns` budget inside `start_turn`.
    """

    parser_classes = [LimitedJSONParser]
    renderer_classes = [*APIView.renderer_classes, EventStreamRenderer]
    throttle_classes = [UserThrottle]
    schema = ConfabAutoSchema()
    # Methods answered by a sync method of the view (method -> its name): reads that
    # wait on nothing but the database. adrf would hop to a thread for the
    # authentication and throttles and again for the handler; here both run in
    # one hop. The async handler of the same method stays for the schema and for
    # Django's rule that a view's handlers are all async.
    sync_handlers: dict[str, str] = {}

    async def async_dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        name = self.sync_handlers.get(request.method)
        if name is None:
            return await super().async_dispatch(request, *args, **kwargs)
        return await sync_to_async(self.dispatch_in_thread)(request, name, *args, **kwargs)

    def dispatch_in_thread(self, request: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        """adrf's `sync_dispatch` with the sync handler `name`."""
        self.args = args
        self.kwargs = kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            self.initial(request, *args, **kwargs)
            response = getattr(self, name)(request, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - DRF's dispatch: rendered as an error response
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return rendered_here(self.response)

    def wants_event_stream(self, request: Request) -> bool:
        renderer = getattr(request, "accepted_renderer", None)
        return isinstance(renderer, EventStreamRenderer)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(response, Response) and self.wants_event_stream(request):
            request.accepted_renderer = FastJSONRenderer()
            request.accepted_media_type = FastJSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


def rendered_here(response: Any) -> Any:
    """The response rendered in the calling thread, as a plain HttpResponse.

    Django's async handler renders a template response (DRF's `Response`) with one
    more thread hop; a plain response with the same status, headers, cookies and
    body is sent as is.
    """
    if not isinstance(response, SimpleTemplateResponse):
        return response
    response.render()
    plain = HttpResponse(
        response.content,
        status=response.status_code,
        reason=response.reason_phrase,
        headers=response.headers,
    )
    plain.cookies = response.cookies
    return plain
