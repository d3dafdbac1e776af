"""OpenAPI generation (drf-spectacular): the bearer scheme and the error responses.

Every operation documents the errors it can answer, all with the `Error`
component: 400 when it takes a body or query parameters, 401 when it needs a
token, 404 when its path names an object, 413/415 when it takes a body, 406
(an `Accept` header it cannot satisfy), 429 and 503 (with `Retry-After`) everywhere.
Operations add their own (409 for turns).
"""

from __future__ import annotations

import inspect
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import get_doc
from rest_framework.permissions import AllowAny

from api.rest.serializers import ErrorSerializer

ERROR_DESCRIPTIONS = {
    "400": "Invalid request: VALIDATION_ERROR (see `fields`) or MALFORMED_JSON.",
    "401": "NOT_AUTHENTICATED: missing, invalid, expired or revoked token.",
    "404": "NOT_FOUND: no such object, or not yours (the two are indistinguishable).",
    "406": "NOT_ACCEPTABLE: the Accept header asks for a media type this endpoint cannot send.",
    "413": "PAYLOAD_TOO_LARGE: the body exceeds the server's limit.",
    "415": "UNSUPPORTED_MEDIA_TYPE: send `Content-Type: application/json`.",
    "429": "RATE_LIMITED: a rate limit of this user (or address) is spent for the current "
    "window; `Retry-After` says when the window ends. Refused requests count too.",
    "503": "SERVICE_UNAVAILABLE (the database or cache is unreachable) or, on the endpoints "
    "that start a turn, TURN_CAPACITY_REACHED (this server runs as many turns as it can; "
    "nothing was stored): retry after the seconds in `Retry-After`.",
}
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "schema": {"type": "integer"},
        "description": "Seconds to wait before retrying (whole seconds, rounded up).",
    }
}


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """`accounts.authentication.BearerTokenAuthentication` as an HTTP bearer scheme."""

    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"
    # Above drf-spectacular's own knox extension, which matches the base class.
    priority = 1

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from `POST /api/v1/auth/token/`: "
            "`Authorization: Bearer <token>` (`Token <token>` also works).",
        }


class ConfabAutoSchema(AutoSchema):
    """AutoSchema with the error responses of every operation and SDK-friendly names."""

    def get_description(self) -> str:
        # The handler's docstring, else the view class's own (not a base class's).
        handler = getattr(self.view, self.method.lower(), None)
        own = type(self.view).__dict__.get("__doc__")
        return get_doc(handler) or (inspect.cleandoc(own) if own else "")

    def _get_serializer_name(
        self, serializer: Any, direction: Any, bypass_extensions: bool = False
    ) -> str:
        # PATCH bodies are declared with optional fields already; no `PatchedX`
        # twin of the component in generated SDKs.
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        return name.removeprefix("Patched")

    def _get_format_parameters(self) -> list[dict[str, Any]]:
        # `?format=sse` works (DRF), but the documented way is the Accept header.
        return []

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation.setdefault("responses", {})
        for code in self._error_codes(operation):
            if code in responses:
                continue
            responses[code] = self.error_response(ERROR_DESCRIPTIONS[code])
            if code in ("429", "503"):
                responses[code]["headers"] = RETRY_AFTER_HEADER
        busy = responses.get("409", {})
        if "TURN_IN_PROGRESS" in busy.get("description", ""):
            busy["headers"] = RETRY_AFTER_HEADER
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def error_response(self, description: str) -> dict[str, Any]:
        component = self.resolve_serializer(ErrorSerializer, "response")
        return {
            "description": description,
            "content": {"application/json": {"schema": component.ref}},
        }

    def _error_codes(self, operation: dict[str, Any]) -> list[str]:
        codes = ["406", "429", "503"]
        has_body = "requestBody" in operation
        has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
        if has_body or has_query:
            codes.append("400")
        if has_body:
            codes += ["413", "415"]
        if not any(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            codes.append("401")
        if "{" in self.path:
            codes.append("404")
        return codes


def describe_parameter_schemas(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: copy each parameter's description into its
    schema, where openapi-python-client reads the docstring of the SDK's argument, and
    give every `limit` the bounds `inputs.parse_limit` enforces (1 to the page maximum:
    CONFAB_SYNC_MAX_PAGE_SIZE for the changes feed, CONFAB_MAX_PAGE_SIZE elsewhere)."""
    from django.conf import settings

    for route, path in result.get("paths", {}).items():
        for operation in path.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if "description" in parameter and "schema" in parameter:
                    parameter["schema"].setdefault("description", parameter["description"])
                if parameter.get("name") == "limit" and parameter.get("in") == "query":
                    maximum = (
                        settings.CONFAB_SYNC_MAX_PAGE_SIZE
                        if route.endswith("/sync/")
                        else settings.CONFAB_MAX_PAGE_SIZE
                    )
                    parameter["schema"].update(minimum=1, maximum=maximum)
    return result
