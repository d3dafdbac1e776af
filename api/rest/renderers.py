"""Renderers: the `text/event-stream` media type of the turn endpoints."""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import BaseRenderer


class EventStreamRenderer(BaseRenderer):
    """Lets content negotiation accept `Accept: text/event-stream` (else DRF answers 406).

    Turn views stream their events themselves (a StreamingHttpResponse); any
    other response of those views is rendered as JSON (`TurnViewMixin`), so
    this renderer never renders a body.
    """

    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        raise NotImplementedError("event streams are written by the view")
