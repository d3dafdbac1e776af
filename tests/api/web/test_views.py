"""The web app's page and asset views: served without staticfiles, with DEBUG on or off."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[True, False], ids=["debug", "no-debug"])
def client(request, settings) -> Client:
    settings.DEBUG = request.param
    return Client()


def test_index_is_the_app_page(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    body = response.content.decode()
    assert '<meta charset="utf-8">' in body
    assert 'type="module" src="/web/app.js?v=' in body
    assert 'href="/web/app.css?v=' in body
    assert response["Cache-Control"] == "no-cache"


def test_index_has_a_same_origin_csp_with_websockets(client: Client) -> None:
    csp = client.get("/", HTTP_HOST="localhost")["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "connect-src 'self' ws://localhost wss://localhost" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp


def test_index_tells_the_app_whether_registration_is_open(client: Client, settings) -> None:
    settings.CONFAB_REGISTRATION_OPEN = False
    assert 'data-registration-open="false"' in client.get("/").content.decode()
    settings.CONFAB_REGISTRATION_OPEN = True
    assert 'data-registration-open="true"' in client.get("/").content.decode()


def test_index_only_answers_get_and_head(client: Client) -> None:
    assert client.head("/").status_code == 200
    assert client.post("/").status_code == 405


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("subscriptions.js", "text/javascript; charset=utf-8"),
        ("vendor/graphql-ws.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ],
)
def test_assets_are_served_with_their_content_type(
    client: Client, name: str, content_type: str
) -> None:
    response = client.get(f"/web/{name}")
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Cache-Control"] == "no-cache"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["ETag"].startswith('"')


def test_assets_revalidate_with_etag(client: Client) -> None:
    etag = client.get("/web/app.js")["ETag"]
    response = client.get("/web/app.js", HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert response.content == b""


def test_versioned_asset_urls_are_immutable(client: Client) -> None:
    etag = client.get("/web/app.css")["ETag"].strip('"')
    assert client.get(f"/web/app.css?v={etag}")["Cache-Control"] == (
        "public, max-age=31536000, immutable"
    )
    # A stale version in the URL must not be cached for a year.
    assert client.get("/web/app.css?v=stale")["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    "name",
    ["missing.js", "../views.py", "..%2Fviews.py", "../templates/web/index.html", "%2Fetc/passwd"],
)
def test_only_files_of_the_asset_folder_are_served(client: Client, name: str) -> None:
    assert client.get(f"/web/{name}").status_code == 404


def test_assets_are_valid_utf8_and_modules_import_each_other(client: Client) -> None:
    """Every relative import of a module names a file the asset view serves."""
    import re

    seen, queue = set(), ["app.js", "share.js"]
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        response = client.get(f"/web/{name}")
        assert response.status_code == 200, name
        source = response.content.decode("utf-8")
        queue.extend(re.findall(r'(?:from|import) "\./([\w./-]+\.js)"', source))
    assert {
        "app.js",
        "chat.js",
        "subscriptions.js",
        "vendor/graphql-ws.js",
        "api.js",
        "messages.js",
        "queries.js",
        "markdown.js",
        "vendor/markdown-it.js",
        "vendor/dompurify.js",
        "vendor/highlight.js",
        "share.js",
        "organize.js",
        "transfer.js",
    } <= seen


def test_the_vendored_graphql_ws_is_the_pinned_file(client: Client) -> None:
    """What the page loads is graphql-ws's browser build byte for byte as pinned by
    `make vendor` (vendor/SHA256SUMS), not an edited copy."""
    import hashlib

    from api.web.views import ASSET_DIR

    lines = (ASSET_DIR / "vendor" / "SHA256SUMS").read_text().splitlines()
    sums = {name: digest for digest, name in (line.split("  ", 1) for line in lines)}
    served = client.get("/web/vendor/graphql-ws.js").content
    assert hashlib.sha256(served).hexdigest() == sums["graphql-ws.js"]
    assert b"GRAPHQL_TRANSPORT_WS_PROTOCOL" in served


@pytest.mark.parametrize(
    ("name", "marker"),
    [
        ("markdown-it.js", b"markdown-it 14.1.0"),
        ("dompurify.js", b"DOMPurify 3.5.0"),
        ("highlight.js", b"Highlight.js v11.12.0"),
    ],
)
def test_the_markdown_renderers_files_are_the_pinned_ones(
    client: Client, name: str, marker: bytes
) -> None:
    """markdown.js's libraries are the npm packages' files byte for byte (SHA256SUMS),
    and every vendored file has a pinned sum."""
    import hashlib

    from api.web.views import ASSET_DIR

    lines = (ASSET_DIR / "vendor" / "SHA256SUMS").read_text().splitlines()
    sums = {name: digest for digest, name in (line.split("  ", 1) for line in lines)}
    assert set(sums) == {p.name for p in (ASSET_DIR / "vendor").iterdir()} - {"SHA256SUMS"}
    served = client.get(f"/web/vendor/{name}").content
    assert hashlib.sha256(served).hexdigest() == sums[name]
    assert marker in served[:2000]


def test_the_share_page_is_noindex_and_strict(client: Client, user, conversation) -> None:
    from langchain_core.messages import HumanMessage

    from conversations import services
    from conversations.shares.services import create_share, revoke_share

    services.append_message(conversation=conversation, message=HumanMessage("hello"))
    share = create_share(user=user, conversation=conversation)
    response = client.get(f"/s/{share.token}", HTTP_HOST="localhost")
    assert response.status_code == 200
    body = response.content.decode()
    assert '<meta name="robots" content="noindex, nofollow">' in body
    assert 'type="module" src="/web/share.js?v=' in body
    assert f'data-share-token="{share.token}"' in body
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["Cache-Control"] == "no-store"
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    revoke_share(share=share)
    for token in (share.token, "x" * 32, "<script>"):
        gone = client.get(f"/s/{token}")
        assert gone.status_code == 404
        assert gone["X-Robots-Tag"] == "noindex, nofollow"
        assert token not in gone.content.decode()


def test_the_share_page_escapes_the_title(client: Client, user, conversation) -> None:
    from langchain_core.messages import HumanMessage

    from conversations import services
    from conversations.shares.services import create_share

    conversation.title = '<script>alert(1)</script>"'
    conversation.save()
    services.append_message(conversation=conversation, message=HumanMessage("hello"))
    share = create_share(user=user, conversation=conversation)
    body = client.get(f"/s/{share.token}").content.decode()
    assert "<script>alert(1)" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;" in body


def test_the_service_worker_is_served_at_the_root_for_the_whole_app(client: Client) -> None:
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert response["Service-Worker-Allowed"] == "/"
    assert response["Cache-Control"] == "no-cache"
    assert b'addEventListener("push"' in response.content
