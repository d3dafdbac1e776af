"""The web chat app: one HTML page and its ES modules and CSS, served by Django itself.

There is no build step and no `collectstatic`: `asset` serves the files under
`api/web/static/web/` directly (with DEBUG on or off), with an ETag so browsers
revalidate cheaply, and long-lived caching when the URL carries the file's hash.
Every response carries a Content-Security-Policy that allows only this origin,
plus websocket connections back to it (GraphQL subscriptions).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path

from django.conf import settings
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotFound,
    HttpResponseNotModified,
)
from django.template import Context, Engine
from django.urls import reverse
from django.utils.http import parse_etags
from django.views.decorators.http import require_safe

HERE = Path(__file__).resolve().parent
ASSET_DIR = HERE / "static" / "web"
# The app's own template engine: `api/web/templates` is not an app template
# directory (the installed app is `api`), and the settings stay untouched.
TEMPLATES = Engine(dirs=[str(HERE / "templates")], libraries={}, builtins=[])
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}
IMMUTABLE = "public, max-age=31536000, immutable"
# Revalidate every time: a changed module must never be served stale after a
# deploy, and an unchanged one costs a 304.
REVALIDATE = "no-cache"


@dataclass(frozen=True)
class Asset:
    data: bytes
    etag: str
    content_type: str


_cache: dict[Path, tuple[float, Asset]] = {}


def load_asset(name: str) -> Asset:
    """The file `name` under ASSET_DIR (re-read when it changes); Http404 otherwise."""
    path = (ASSET_DIR / name).resolve()
    content_type = CONTENT_TYPES.get(path.suffix)
    if content_type is None or not path.is_relative_to(ASSET_DIR) or not path.is_file():
        raise Http404("No such asset.")
    mtime = path.stat().st_mtime
    cached = _cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    data = path.read_bytes()
    asset = Asset(data, hashlib.sha256(data).hexdigest()[:16], content_type)
    _cache[path] = (mtime, asset)
    return asset


def asset_url(name: str) -> str:
    """The URL of an asset, versioned by its content hash."""
    return f"{reverse('web:asset', args=[name])}?v={load_asset(name).etag}"


def content_security_policy(request: HttpRequest) -> str:
    """Same-origin everything; websockets to this host (browsers differ on whether
    'self' covers ws:/wss:, so they are named)."""
    host = request.get_host()
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "font-src 'self'",
            f"connect-src 'self' ws://{host} wss://{host}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def with_security_headers(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Add the CSP and related headers to a view's responses."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = content_security_policy(request)
        response.setdefault("Referrer-Policy", "same-origin")
        response["X-Content-Type-Options"] = "nosniff"
        return response

    return wrapper


@require_safe
@with_security_headers
def index(request: HttpRequest) -> HttpResponse:
    """The single page of the chat app (everything else happens over the API)."""
    context = {
        "css_url": asset_url("app.css"),
        "js_url": asset_url("app.js"),
        "icon_url": asset_url("icon.svg"),
        "registration_open": getattr(settings, "CONFAB_REGISTRATION_OPEN", False),
    }
    html = TEMPLATES.get_template("web/index.html").render(Context(context))
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = REVALIDATE
    return response


# A shared conversation is not for search engines (the page's meta tag says so too).
NOINDEX = "noindex, nofollow"
REVOKED_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="robots" content="noindex, nofollow"><title>Not found · Confab</title></head>'
    "<body><p>This link was revoked, or never existed.</p></body></html>"
)


@require_safe
@with_security_headers
def shared_conversation(request: HttpRequest, token: str) -> HttpResponse:
    """The read-only page of a share link (`share.js` reads its messages over the API);
    404 for an unknown or revoked token."""
    from conversations.shares.selectors import share_by_token
    from core.errors import NotFound

    try:
        share = share_by_token(token)
    except NotFound:
        response: HttpResponse = HttpResponseNotFound(REVOKED_PAGE)
    else:
        conversation = share.conversation
        context = {
            "token": share.token,
            "title": conversation.title or "Shared conversation",
            "agent_name": conversation.agent.name,
            "shared_at": share.created_at.strftime("%Y-%m-%d"),
            "css_url": asset_url("app.css"),
            "js_url": asset_url("share.js"),
            "icon_url": asset_url("icon.svg"),
        }
        html = TEMPLATES.get_template("web/share.html").render(Context(context))
        response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = NOINDEX
    # The token is in the URL: no page it links to learns it.
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_safe
@with_security_headers
def asset(request: HttpRequest, name: str) -> HttpResponse:
    """One static file of the app, with ETag revalidation."""
    item = load_asset(name)
    etag = f'"{item.etag}"'
    cache_control = IMMUTABLE if request.GET.get("v") == item.etag else REVALIDATE
    if etag in parse_etags(request.headers.get("If-None-Match", "")):
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = HttpResponse(item.data, content_type=item.content_type)
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    return response


@require_safe
@with_security_headers
def service_worker(request: HttpRequest) -> HttpResponse:
    """The service worker (notifications), served at the root so its scope is the app."""
    response = asset(request, "sw.js")
    response["Service-Worker-Allowed"] = "/"
    response["Cache-Control"] = REVALIDATE
    return response
