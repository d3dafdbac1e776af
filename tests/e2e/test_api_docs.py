"""Swagger UI and ReDoc in a real browser (Chromium) under their Content-Security-Policy:
they render the API from files served by this origin only, and the browser reports no
CSP violation or script error (api/rest/docs.py; issue 14, finding 15)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.support.browser import DESKTOP, ConsoleWatcher

pytest.importorskip("playwright")
from playwright.sync_api import expect

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def docs_server(browser, live_server_factory):
    return live_server_factory(extra_env={"CONFAB_API_DOCS": "1", "DJANGO_ALLOW_ASYNC_UNSAFE": ""})


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        ("/api/docs/", "/api/v1/conversations/"),  # an operation of the schema, in Swagger UI
        ("/api/redoc/", "Store LLM chat conversations and run live turns."),
    ],
)
def test_the_docs_render_under_their_policy(browser, docs_server, path, rendered):
    context = browser.new_context(viewport=DESKTOP, base_url=docs_server.url)
    page = context.new_page()
    watcher = ConsoleWatcher(page)
    origins = set()
    page.on("requestfinished", lambda request: origins.add(urlsplit(request.url)[:2]))
    try:
        page.goto(path)
        expect(page.get_by_text(rendered).first).to_be_visible(timeout=20_000)
        page.wait_for_load_state("networkidle")
        # ReDoc's footer always asks for Redocly's logo from a CDN: the policy blocks it
        # (and ReDoc hides the image). Nothing else may be blocked or fail.
        errors = [e for e in watcher.errors if "https://cdn.redoc.ly/" not in e]
        assert errors == [], watcher.errors
        here = urlsplit(docs_server.url)[:2]
        assert origins <= {here, ("data", ""), ("blob", "")}, origins
    finally:
        context.close()
