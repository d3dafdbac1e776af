"""Request body parsing with the body size limit enforced."""

from __future__ import annotations

import io
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from api.rest.errors import PayloadTooLargeException
from core.text_input import check_text


class LimitedJSONParser(JSONParser):
    """JSON bodies up to DATA_UPLOAD_MAX_MEMORY_SIZE bytes (413 beyond).

    DRF reads the request stream directly, which skips Django's own check of
    that setting (it is made only in `HttpRequest.body`).
    """

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: dict[str, Any] | None = None,
    ) -> Any:
        try:
            data = self._parse(stream, media_type, parser_context)
        except RecursionError:
            # Nesting deeper than Python's recursion limit: malformed, not a server error.
            raise ParseError("JSON parse error - nested too deeply.") from None
        # NUL and lone surrogates (`"\u0000"`, `"\ud800"`) in any key or value of any
        # body: 400 naming the field, never a database or encoder error (core.text_input).
        check_text(data)
        return data

    def body_limit(self) -> int | None:
        """The largest body this parser reads (bytes)."""
        return settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    def _parse(
        self, stream: Any, media_type: str | None, parser_context: dict[str, Any] | None
    ) -> Any:
        limit = self.body_limit()
        if limit is None or stream is None:
            return super().parse(stream, media_type, parser_context)
        request = (parser_context or {}).get("request")
        meta = getattr(request, "META", {})
        try:
            declared = int(meta.get("CONTENT_LENGTH") or 0)
        except (TypeError, ValueError):
            declared = 0
        if declared > limit:
            raise PayloadTooLargeException()
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLargeException()
        return super().parse(io.BytesIO(body), media_type, parser_context)
