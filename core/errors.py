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

    # Keys of `extra` that the error body carries on every surface (REST body, the
    # chat socket's error frame; GraphQL puts all of `extra` in its extensions).
    body_extra: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The documented error shape shared by every surface."""
        body: dict[str, Any] = {"type": self.type, "code": self.code, "detail": self.detail}
        if self.fields:
            body["fields"] = self.fields
        body.update(self.body_fields())
        return body

    def body_fields(self) -> dict[str, Any]:
        """The `body_extra` keys this error has."""
        return {key: self.extra[key] for key in self.body_extra if key in self.extra}


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
    # Seconds a client waits before trying again (REST `Retry-After`, websocket
    # `retry_after`): a reply streams for seconds. Or send with on_busy "enqueue".
    RETRY_AFTER_SECONDS = 2

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("extra", {"retry_after": self.RETRY_AFTER_SECONDS})
        super().__init__(detail, **kwargs)


class NoActiveTurn(Conflict):
    code = "NO_ACTIVE_TURN"
    default_detail = "No turn is running in this conversation."


class ToolCallAlreadyDecided(Conflict):
    """An approve or deny of a tool call that was already approved or denied (by the
    user, the approval timeout or a cancel): the first decision stands."""

    code = "TOOL_CALL_ALREADY_DECIDED"
    default_detail = "This tool call was already decided."


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


class DatabaseUnavailable(ServiceUnavailable):
    """The database is unreachable: every surface says it with these words (REST 503,
    GraphQL's SERVICE_UNAVAILABLE, the chat websocket's error frame)."""

    default_detail = "The database is unavailable. Retry shortly."


class UserTurnCapacityReached(RateLimited):
    """The user already runs their share of this process's turns
    (CONFAB_MAX_TURNS_PER_USER): refused before anything is stored, so one user cannot
    take the capacity every other user shares."""

    code = "USER_TURN_CAPACITY_REACHED"
    default_detail = "You are running as many turns as you may at once. Retry shortly."


class TurnCapacityReached(ServiceUnavailable):
    """This process already runs CONFAB_MAX_TURNS_PER_PROCESS turns: refused before
    anything is stored, with `retry_after` seconds (503 + Retry-After on REST)."""

    code = "TURN_CAPACITY_REACHED"
    default_detail = "The server is running as many turns as it can. Retry shortly."


class QuotaExceeded(RateLimited):
    """The user's usage quota (tokens or cost, per UTC day or month) is spent: a turn is
    refused before anything is stored. `extra`: `resets_at` (ISO 8601, when the spent
    period ends), `retry_after` (seconds until then), `period` ("day" | "month") and
    `metric` ("tokens" | "cost"); REST adds them to the body and Retry-After, GraphQL
    to `extensions`, the chat websocket to its error frame."""

    code = "QUOTA_EXCEEDED"
    default_detail = "Your usage quota is spent. Retry when it resets (resets_at)."
    body_extra = ("resets_at", "period", "metric")


# --- Files (conversations/files) ---------------------------------------------------


class FileTooLarge(ApplicationError):
    """An upload beyond CONFAB_FILE_MAX_BYTES (or the upload body limit)."""

    code = "FILE_TOO_LARGE"
    type = "invalid_request"
    status = 413
    default_detail = "The file is larger than this server accepts."


class UnsupportedFileType(ApplicationError):
    """Bytes that are none of the accepted types (PNG, JPEG, WebP, GIF, PDF, text,
    Markdown, CSV), or that read as two types at once (a polyglot)."""

    code = "UNSUPPORTED_FILE_TYPE"
    type = "invalid_request"
    status = 415
    default_detail = (
        "The file's type is not accepted (PNG, JPEG, WebP, GIF, PDF, text, Markdown, CSV)."
    )


class InvalidFile(ApplicationError):
    """An accepted type whose bytes do not decode (a broken image or PDF)."""

    code = "INVALID_FILE"
    type = "invalid_request"
    status = 422
    default_detail = "The file could not be read."


class ImageTooLarge(ApplicationError):
    """An image with more pixels than CONFAB_IMAGE_MAX_PIXELS: refused before decoding
    (a decompression bomb)."""

    code = "IMAGE_TOO_LARGE"
    type = "invalid_request"
    status = 422
    default_detail = "The image has more pixels than this server accepts."


class FileLimitReached(Conflict):
    """The user already keeps CONFAB_FILES_PER_USER files: delete some first."""

    code = "FILE_LIMIT_REACHED"
    default_detail = "You have stored as many files as allowed. Delete some first."


class ModelCannotSeeImages(ApplicationError):
    """The turn's input has an image and its model (registry: `supports_images`) takes
    none: refused before anything is stored. Not a field error: GraphQL shows it as
    `extensions.code`, like TURN_IN_PROGRESS."""

    code = "MODEL_CANNOT_SEE_IMAGES"
    type = "invalid_request"
    status = 400
    default_detail = "This conversation's model cannot see images. Choose a model that can."
