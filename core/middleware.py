"""Django's stock middleware, without a thread hop per hook under ASGI.

Under ASGI, Django's `MiddlewareMixin` runs every `process_request`,
`process_view` and `process_response` of a sync-written middleware through
`sync_to_async`: a hop to the request's thread and back for each, 15 per request
with the stock list (bench/BENCHMARKS.md, "REST"). These hooks do no I/O (they
set headers, lazy objects and cookies), so here they run on the event loop. The
exceptions are kept in a thread: saving a modified session and storing flash
messages, which may write to the database.

Under WSGI and Django's test client (a sync chain) the classes behave exactly
like Django's.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.core import checks
from django.core.checks.security import base as security_checks
from django.core.checks.security import csrf as csrf_checks
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.middleware import clickjacking, common, csrf, security
from django.utils.module_loading import import_string

from core.async_middleware import AsyncCapableMiddleware
from core.errors import ApplicationError
from core.text_input import unsafe_text_error, unsafe_text_path


class HooksOnLoopMixin:
    """`MiddlewareMixin.__acall__`, calling the hooks directly instead of in a thread."""

    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)  # type: ignore[call-arg]
        process_view = getattr(self, "process_view", None)
        if process_view is not None and iscoroutinefunction(self):
            # Django adapts each process_view to the chain's mode when it loads the
            # middleware: an async one is awaited as is.
            async def process_view_on_loop(*args: Any) -> Any:
                return process_view(*args)

            self.process_view = process_view_on_loop

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)  # type: ignore[attr-defined]
        if hasattr(self, "process_response"):
            if self.response_may_write(request):
                response = await sync_to_async(self.process_response, thread_sensitive=True)(
                    request, response
                )
            else:
                response = self.process_response(request, response)
        return response

    def response_may_write(self, request: HttpRequest) -> bool:
        """Whether `process_response` may do I/O for this request (then it runs in a thread)."""
        return False


class SecurityMiddleware(HooksOnLoopMixin, security.SecurityMiddleware):
    pass


class CommonMiddleware(HooksOnLoopMixin, common.CommonMiddleware):
    pass


class CsrfViewMiddleware(HooksOnLoopMixin, csrf.CsrfViewMiddleware):
    pass


class AuthenticationMiddleware(HooksOnLoopMixin, auth.AuthenticationMiddleware):
    pass


class XFrameOptionsMiddleware(HooksOnLoopMixin, clickjacking.XFrameOptionsMiddleware):
    pass


class SessionMiddleware(HooksOnLoopMixin, sessions.SessionMiddleware):
    def response_may_write(self, request: HttpRequest) -> bool:
        session = getattr(request, "session", None)
        return session is not None and (session.modified or settings.SESSION_SAVE_EVERY_REQUEST)


class MessageMiddleware(HooksOnLoopMixin, messages.MessageMiddleware):
    def response_may_write(self, request: HttpRequest) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# The REST API parses its own bodies (JSON, and uploads' multipart in
# api/rest/uploads.py, which checks their fields): parsing them here first would
# bypass the upload parser's limits and handlers.
API_PREFIX = "/api/"


def error_response(request: HttpRequest, error: ApplicationError) -> JsonResponse:
    """`error` in the shape of the surface `request` is for: GraphQL's transport-error
    shape under `/graphql`, the REST shape everywhere else."""
    if request.path.startswith("/graphql"):
        extensions: dict[str, Any] = {"code": error.code, "type": error.type}
        if error.fields:
            extensions["fields"] = [
                {"field": name, "code": item["code"], "message": item["message"]}
                for name, items in error.fields.items()
                for item in items
            ]
        body: dict[str, Any] = {"errors": [{"message": error.detail, "extensions": extensions}]}
    else:
        body = error.as_dict()
    return JsonResponse(body, status=error.status, json_dumps_params={"ensure_ascii": False})


class UnsafeTextMiddleware(AsyncCapableMiddleware):
    """Refuse NUL characters and unpaired surrogates (`core.text_input`) in the query
    string and in form fields of every HTTP request, before any view sees them: 400
    VALIDATION_ERROR naming the parameter, in the REST or GraphQL error shape. JSON
    bodies are checked by their parsers (REST: `LimitedJSONParser`; GraphQL: the
    `UnsafeText` extension, which sees variables and string literals).

    Async-capable: a sync-only middleware would put the whole chain in a thread."""

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        return self.refusal(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        return self.refusal(request) or await self.get_response(request)

    @staticmethod
    def refusal(request: HttpRequest) -> JsonResponse | None:
        path = unsafe_text_path(dict(request.GET.lists()))
        if (
            path is None
            and request.content_type in FORM_MEDIA_TYPES
            and not request.path.startswith(API_PREFIX)
        ):
            # Form fields (the admin); file contents are not text.
            path = unsafe_text_path(dict(request.POST.lists()))
        if path is None:
            return None
        return error_response(request, unsafe_text_error(path.rsplit(".", 1)[0]))


# Django's deploy checks look for its own class paths in MIDDLEWARE, so they would
# report these subclasses as missing: they are silenced in settings and replaced
# by this check, which accepts the stock classes and their subclasses alike.
REQUIRED_MIDDLEWARE = {
    "django.middleware.security.SecurityMiddleware": security_checks.W001,
    "django.middleware.clickjacking.XFrameOptionsMiddleware": security_checks.W002,
    "django.middleware.csrf.CsrfViewMiddleware": csrf_checks.W003,
}


@checks.register(checks.Tags.security, deploy=True)
def check_security_middleware(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """security.W001-W003 for MIDDLEWARE entries that are subclasses of Django's."""
    installed = [import_string(path) for path in settings.MIDDLEWARE]
    return [
        warning
        for path, warning in REQUIRED_MIDDLEWARE.items()
        if not any(issubclass(cls, import_string(path)) for cls in installed)
    ]
