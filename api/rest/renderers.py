"""Renderers: JSON through orjson, and the `text/event-stream` media type of the turn
endpoints."""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

from core.rows import StoredJSON, orjson_default

# Types whose JSON DRF writes its own way (e.g. datetimes ending in "Z"): orjson
# hands them back, and DRF renders the body.
_ORJSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


class StoredJSONEncoder(JSONEncoder):
    """DRF's encoder, which also writes `StoredJSON` (history pages read as rows)."""

    def default(self, obj: Any) -> Any:
        if isinstance(obj, StoredJSON):
            return obj.value()
        return super().default(obj)


class FastJSONRenderer(JSONRenderer):
    """DRF's compact UTF-8 JSON, written by orjson (a history page: 5-10x faster).

    Anything orjson does not write exactly as DRF would (Decimal, datetimes,
    lazy strings, an `indent` asked for in the Accept header) is rendered by
    DRF's `JSONRenderer`. `StoredJSON` is embedded as the database wrote it.
    """

    encoder_class = StoredJSONEncoder

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        if data is None or self.get_indent(accepted_media_type or "", renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            return orjson.dumps(data, default=orjson_default, option=_ORJSON_OPTIONS)
        except TypeError:
            return super().render(data, accepted_media_type, renderer_context)


class EventStreamRenderer(BaseRenderer):
    """Lets content negotiation accept `Accept: text/event-stream` (else DRF answers 406).

    Turn views stream their events themselves (a StreamingHttpResponse); any
    other response of those views is rendered as JSON
    (`ConfabAsyncView.finalize_response`), so
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
