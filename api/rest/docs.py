"""The API's interactive docs: Swagger UI at `/api/docs/`, ReDoc at `/api/redoc/`.

- Their files come from drf-spectacular-sidecar (pinned in requirements.lock) and are
  served here (`sidecar_file`), never from a CDN: the pages share their origin with
  the web app, which keeps its token in localStorage, so a script from elsewhere
  could read it.
- The pages run under a Content-Security-Policy that allows only this origin's
  scripts, and no inline script (Swagger UI's start-up script is a file of its own:
  drf-spectacular's split view).
- Served only when CONFAB_API_DOCS is on (default: DEBUG); otherwise they and their
  files answer 404 like any unknown endpoint. The schema (`/api/schema/`) runs
  nothing and stays public.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import drf_spectacular_sidecar
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.views.decorators.http import require_safe
from django.views.static import serve
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

from core.errors import NotFound

SIDECAR_ROOT = Path(drf_spectacular_sidecar.__file__).parent / "static" / "drf_spectacular_sidecar"
# What the two pages load; nothing else of the package (its OAuth redirect page, source
# maps, licences) is served.
SIDECAR_FILES = frozenset(
    {
        "swagger-ui-dist/swagger-ui.css",
        "swagger-ui-dist/swagger-ui-bundle.js",
        "swagger-ui-dist/swagger-ui-standalone-preset.js",
        "swagger-ui-dist/favicon-32x32.png",
        "redoc/bundles/redoc.standalone.js",
    }
)

# Swagger UI and ReDoc set inline style attributes and ReDoc searches in a worker it
# starts from a blob: styles may be inline, scripts may not.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def docs_enabled() -> bool:
    return bool(getattr(settings, "CONFAB_API_DOCS", False))


def not_found() -> JsonResponse:
    error = NotFound("No such endpoint.")
    return JsonResponse(error.as_dict(), status=error.status)


class DocsPage:
    """Served only when CONFAB_API_DOCS is on, and under the CSP."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not docs_enabled():
            return not_found()
        response = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response["Referrer-Policy"] = "same-origin"
        return response


class SwaggerView(DocsPage, SpectacularSwaggerSplitView):
    """Swagger UI; its start-up script is this view's `?script` answer."""


class RedocView(DocsPage, SpectacularRedocView):
    """ReDoc, without the web fonts drf-spectacular's page loads from Google."""

    template_name = "api/redoc.html"


@require_safe
def sidecar_file(request: HttpRequest, path: str) -> HttpResponseBase:
    """One file of the pinned Swagger UI / ReDoc build, at the URL drf-spectacular's
    SIDECAR setting gives it (`static/drf_spectacular_sidecar/...`)."""
    if not docs_enabled() or path not in SIDECAR_FILES:
        return not_found()
    return serve(request, path, document_root=SIDECAR_ROOT)
