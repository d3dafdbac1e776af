"""The REST API's one error shape, `{"type", "code", "detail", "fields"?}`.

`exception_handler` (REST_FRAMEWORK["EXCEPTION_HANDLER"]) maps every error a
view can raise to it: the domain's ApplicationError as it is, and DRF's and
Django's exceptions to codes of the same family. `fields` maps a request field
(dotted for nested ones, e.g. `context.언어`) to a list of `{code, message}`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.signals import got_request_exception
from django.db import DatabaseError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from core import errors as domain

logger = logging.getLogger(__name__)


class MalformedJSON(domain.ValidationFailed):
    code = "MALFORMED_JSON"
    default_detail = "The request body is not valid JSON."


class PayloadTooLarge(domain.ApplicationError):
    code = "PAYLOAD_TOO_LARGE"
    type = "invalid_request"
    status = 413
    default_detail = "The request body is too large."


class MethodNotAllowed(domain.ApplicationError):
    code = "METHOD_NOT_ALLOWED"
    type = "invalid_request"
    status = 405
    default_detail = "This method is not allowed on this endpoint."


class NotAcceptable(domain.ApplicationError):
    code = "NOT_ACCEPTABLE"
    type = "invalid_request"
    status = 406
    default_detail = "This endpoint cannot answer in the media type the Accept header asks for."


class UnsupportedMediaType(domain.ApplicationError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    type = "invalid_request"
    status = 415
    default_detail = "Send the request body as application/json."


class InternalError(domain.ApplicationError):
    code = "INTERNAL_ERROR"
    type = "api_error"
    status = 500
    default_detail = "Something went wrong on our side. The error was logged."


class PayloadTooLargeException(drf.APIException):
    """Raised by the parser; mapped to PayloadTooLarge."""

    status_code = 413
    default_code = "payload_too_large"
    default_detail = PayloadTooLarge.default_detail


def flatten_field_errors(detail: Any, prefix: str = "") -> dict[str, list[dict[str, str]]]:
    """DRF's nested ValidationError detail as `{"a.b": [{code, message}, ...]}`."""
    result: dict[str, list[dict[str, str]]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            for name, items in flatten_field_errors(
                value, f"{prefix}.{key}" if prefix else str(key)
            ).items():
                result.setdefault(name, []).extend(items)
    elif isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            for item in detail:
                result.setdefault(prefix or "non_field_errors", []).append(_item(item))
        else:
            for index, item in enumerate(detail):
                result.update(
                    flatten_field_errors(item, f"{prefix}.{index}" if prefix else str(index))
                )
    elif detail:
        result[prefix or "non_field_errors"] = [_item(detail)]
    return result


def _item(error: Any) -> dict[str, str]:
    return {"code": str(getattr(error, "code", None) or "invalid"), "message": str(error)}


def validation_error(exc: drf.ValidationError) -> domain.ValidationFailed:
    fields = flatten_field_errors(exc.detail)
    if len(fields) == 1:
        (name, items), *_ = fields.items()
        detail = (
            items[0]["message"] if name == "non_field_errors" else f"{name}: {items[0]['message']}"
        )
    else:
        detail = f"Invalid fields: {', '.join(fields)}."
    return domain.ValidationFailed(detail, fields=fields)


def to_application_error(exc: Exception) -> domain.ApplicationError | None:
    """The ApplicationError for an exception raised in a view, or None for a server bug."""
    if isinstance(exc, domain.ApplicationError):
        return exc
    if isinstance(exc, Http404 | drf.NotFound):
        return domain.NotFound()
    if isinstance(exc, drf.ValidationError):
        return validation_error(exc)
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        detail = str(exc.detail) if isinstance(exc, drf.AuthenticationFailed) else None
        return domain.NotAuthenticated(detail)
    if isinstance(exc, DjangoPermissionDenied):
        return domain.PermissionDenied()
    if isinstance(exc, drf.PermissionDenied):
        return domain.PermissionDenied(str(exc.detail))
    if isinstance(exc, drf.Throttled):
        wait = max(1, math.ceil(exc.wait)) if exc.wait is not None else None
        return domain.RateLimited(
            "Too many requests. Retry after the number of seconds in Retry-After.",
            extra={"retry_after": wait},
        )
    if isinstance(exc, drf.ParseError):
        return MalformedJSON()
    if isinstance(exc, PayloadTooLargeException | RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, drf.MethodNotAllowed):
        return MethodNotAllowed(str(exc.detail))
    if isinstance(exc, drf.NotAcceptable):
        return NotAcceptable()
    if isinstance(exc, drf.UnsupportedMediaType):
        return UnsupportedMediaType(str(exc.detail))
    if isinstance(exc, drf.APIException):
        # Any other DRF exception keeps its status; its code follows ours.
        error = domain.ApplicationError(str(exc.detail), code=str(exc.default_code).upper())
        error.status = exc.status_code
        return error
    return None


def error_response(error: domain.ApplicationError) -> Response:
    """The JSON response for an ApplicationError, with its protocol headers."""
    headers: dict[str, str] = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    retry_after = error.extra.get("retry_after")
    if error.status in (429, 503) and retry_after:
        headers["Retry-After"] = str(retry_after)
    return Response(error.as_dict(), status=error.status, headers=headers)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """REST_FRAMEWORK["EXCEPTION_HANDLER"]: every error in the one JSON shape.

    Database errors are left to propagate: `api.middleware` answers an
    unreachable database with 503. Any other unexpected exception is logged,
    reported through `got_request_exception` (error trackers, the test client)
    and answered 500 INTERNAL_ERROR without its text.
    """
    if isinstance(exc, DatabaseError):
        return None
    error = to_application_error(exc)
    if error is None:
        request = context.get("request")
        logger.error("Unhandled error in %s", context.get("view"), exc_info=exc)
        got_request_exception.send(sender=None, request=getattr(request, "_request", request))
        error = InternalError()
    set_rollback()
    return error_response(error)
