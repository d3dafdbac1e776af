"""How large a request body may be, by path: the one place that knows the upload path.

Every body is bounded by CONFAB_MAX_BODY_BYTES except uploads (`POST /api/v1/files/`),
which have their own, larger CONFAB_UPLOAD_MAX_BODY_BYTES. Whatever enforces a body
limit (the REST parsers; an ASGI layer that cuts bodies while they stream) asks here.
"""

from __future__ import annotations

from django.conf import settings

UPLOAD_PATHS = frozenset({"/api/v1/files/"})


def max_body_bytes(path: str) -> int:
    """The largest body accepted for a request to `path`."""
    if path in UPLOAD_PATHS:
        return int(settings.CONFAB_UPLOAD_MAX_BODY_BYTES)
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
