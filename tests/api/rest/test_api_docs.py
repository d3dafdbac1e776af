"""Swagger UI and ReDoc (issue 14, finding 15).

They loaded `swagger-ui-dist@latest` and `redoc@latest` from a CDN, with no
integrity check and no Content-Security-Policy, on the origin where the web app
keeps its token. Now their files come from the pinned drf-spectacular-sidecar
package, served by Confab, under a CSP that runs only this origin's scripts; and
the pages are served only when CONFAB_API_DOCS is on (default: DEBUG). The schema
(`/api/schema/`, a document that runs nothing) stays public.
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import drf_spectacular_sidecar
import pytest

pytestmark = pytest.mark.django_db

SIDECAR = Path(drf_spectacular_sidecar.__file__).parent / "static" / "drf_spectacular_sidecar"
PAGES = ["/api/docs/", "/api/redoc/"]


class Resources(HTMLParser):
    """The scripts, stylesheets and icons a page loads, and its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            if attributes.get("src"):
                self.urls.append(attributes["src"])
            else:
                self._in_inline_script = True
                self.inline_scripts.append("")
        elif tag == "link" and attributes.get("href"):
            self.urls.append(attributes["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_inline_script = False

    def handle_data(self, data: str) -> None:
        if self._in_inline_script:
            self.inline_scripts[-1] += data


def resources(html: str) -> Resources:
    parser = Resources()
    parser.feed(html)
    return parser


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.fixture
def docs_on(settings):
    settings.CONFAB_API_DOCS = True


@pytest.mark.parametrize("path", PAGES)
def test_pages_load_only_pinned_files_served_here(client, docs_on, path):
    response = client.get(path)
    assert response.status_code == 200
    page = resources(response.content.decode())
    assert page.urls, "the page loads its files"
    assert page.inline_scripts == []
    for url in page.urls:
        assert url.startswith("/"), f"{url} is not served by this origin"
        assert not url.startswith("//")
        served = client.get(url)
        assert served.status_code == 200, url
        body = b"".join(served.streaming_content) if served.streaming else served.content
        if url.startswith("/static/drf_spectacular_sidecar/"):
            # Byte for byte the pinned package's file.
            assert (
                body
                == (SIDECAR / url.removeprefix("/static/drf_spectacular_sidecar/")).read_bytes()
            )
        else:
            # Swagger UI's start-up script, rendered by the docs view itself.
            assert "application/javascript" in served["Content-Type"], url
    assert "cdn" not in response.content.decode().lower()
    assert "googleapis" not in response.content.decode()


@pytest.mark.parametrize("path", PAGES)
def test_pages_run_under_a_content_security_policy(client, docs_on, path):
    response = client.get(path)
    directives = csp_directives(response["Content-Security-Policy"])
    assert directives["default-src"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]  # no inline script, no eval, no CDN
    assert directives["connect-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert response["Referrer-Policy"] == "same-origin"


def test_only_the_files_the_pages_load_are_served(client, docs_on):
    assert (
        client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css").status_code
        == 200
    )
    for path in (
        "swagger-ui-dist/oauth2-redirect.html",  # a page of its own, with its own script
        "swagger-ui-dist/swagger-ui-bundle.js.map",
        "swagger-ui-dist/",
        "../__init__.py",
        "swagger-ui-dist/../../../apps.py",
    ):
        assert client.get(f"/static/drf_spectacular_sidecar/{path}").status_code == 404, path


def test_docs_are_off_unless_enabled(client, settings):
    settings.CONFAB_API_DOCS = False
    for path in [*PAGES, "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "NOT_FOUND"
    # The schema runs nothing: it stays public (SDK generators fetch it).
    assert client.get("/api/schema/").status_code == 200
    settings.CONFAB_API_DOCS = True
    for path in PAGES:
        assert client.get(path).status_code == 200
