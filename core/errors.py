"""The one domain error hierarchy.

Services raise these; each surface maps them once: DRF's exception handler,
GraphQL error payloads (`extensions.code`) and websocket `error` frames. The
`code` is stable and safe to show; `detail` never carries exception text from
libraries, prompts or keys.
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """Base of every error a client may see."""

    code = "APPLICATION_ERROR"
    type = "application_error"
    status = 400
    default_detail = "The request could not be completed."

    def __init__(
        self,
        detail: str | None = None,
        *,
        fields: dict[str, list[dict[str, str]]] | None = None,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.fields = fields or {}
        if code:
            self.code = code
        self.extra = extra or {}
        super().__init__(self.detail)

    def as_dict(self) -> dict[str, Any]:
        """The documented error shape shared by every surface."""
        body: dict[str, Any] = {"type": self.type, "code": self.code, "detail": self.detail}
        if self.fields:
            body["fields"] = self.fields
        return body


class ValidationFailed(ApplicationError):
    code = "VALIDATION_ERROR"
    type = "invalid_request"
    status = 400
    default_detail = "The request is invalid."

    @classmethod
    def for_field(cls, field: str, code: str, message: str) -> ValidationFailed:
        return cls(message, fields={field: [{"code": code, "message": message}]})


class NotAuthenticated(ApplicationError):
    code = "NOT_AUTHENTICATED"
    type = "authentication_error"
    status = 401
    default_detail = "Authentication credentials were not provided or are invalid."


class PermissionDenied(ApplicationError):
    code = "PERMISSION_DENIED"
    type = "permission_error"
    status = 403
    default_detail = "You are not allowed to do this."


class NotFound(ApplicationError):
    """Missing, or not the caller's: the two are indistinguishable on purpose."""

    code = "NOT_FOUND"
    type = "not_found"
    status = 404
    default_detail = "Not found."


class Conflict(ApplicationError):
    code = "CONFLICT"
    type = "conflict"
    status = 409
    default_detail = "The request conflicts with the current state."


class TurnInProgress(Conflict):
    code = "TURN_IN_PROGRESS"
    default_detail = "A turn is already running in this conversation."


class NoActiveTurn(Conflict):
    code = "NO_ACTIVE_TURN"
    default_detail = "No turn is running in this conversation."


class NothingToRegenerate(Conflict):
    code = "NOTHING_TO_REGENERATE"
    default_detail = "The conversation has no human message to answer again."


class IdempotencyKeyReused(Conflict):
    code = "IDEMPOTENCY_KEY_REUSED"
    default_detail = "This client_message_id was already used for a different message."


class RateLimited(ApplicationError):
    code = "RATE_LIMITED"
    type = "rate_limited"
    status = 429
    default_detail = "Too many requests."


class ServiceUnavailable(ApplicationError):
    code = "SERVICE_UNAVAILABLE"
    type = "service_unavailable"
    status = 503
    default_detail = "The service is temporarily unavailable. Retry shortly."


class TurnCapacityReached(ServiceUnavailable):
    """This process already runs CONFAB_MAX_TURNS_PER_PROCESS turns: refused before
    anything is stored, with `retry_after` seconds (503 + Retry-After on REST)."""

    code = "TURN_CAPACITY_REACHED"
    default_detail = "The server is running as many turns as it can. Retry shortly."


class ModelCannotSeeImages(ApplicationError):
    """The turn's input has an image and its model (registry: `supports_images`) takes
    none: refused before anything is stored. Not a field error: GraphQL shows it as
    `extensions.code`, like TURN_IN_PROGRESS."""

    code = "MODEL_CANNOT_SEE_IMAGES"
    type = "invalid_request"
    status = 400
    default_detail = "This conversation's model cannot see images. Choose a model that can."
