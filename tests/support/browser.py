"""Debian's Chromium driven by Playwright, for the browser tests (never a downloaded
browser): the module-scoped `browser` fixture, pages with a console watcher, and
where screenshots go."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CONFAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def screenshot_dir() -> Path:
    if os.environ.get("CONFAB_UPDATE_SCREENSHOTS") == "1":
        return ROOT / "docs" / "screenshots"
    return ROOT / "build" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which(CHROMIUM) or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if executable is None:
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    # Playwright's sync API keeps an event loop running in this thread, so Django
    # refuses the test's own ORM calls (creating users, flushing the database)
    # unless told otherwise. Only this process: the live servers get it unset.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class ConsoleWatcher:
    """Collects console errors and uncaught page errors of a page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console.error: {message.text}")


# The web app's live servers keep Django's async-safety checks on.
SERVER_ENV = {"DJANGO_ALLOW_ASYNC_UNSAFE": ""}
PASSWORD = "web-app-password-1"


@pytest.fixture
def server(browser, live_server_factory, seed_agents):
    """A live Confab server for a browser test (started after the browser; e2e modules
    that need another kind of server define their own `server`)."""
    return live_server_factory(extra_env=SERVER_ENV)


@pytest.fixture
def web(browser: Browser, server) -> Iterator[tuple[Page, ConsoleWatcher]]:
    """A fresh page on the live server: (page, console)."""
    page, watcher = new_page(browser, server.url)
    yield page, watcher
    page.context.close()


def new_page(browser: Browser, base_url: str) -> tuple[Page, ConsoleWatcher]:
    """A page in a fresh browser context (empty localStorage): (page, console)."""
    context = browser.new_context(viewport=DESKTOP, locale="ko-KR", base_url=base_url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page, ConsoleWatcher(page)


# --- what the browser tests do in the app ----------------------------------------


@pytest.fixture
def web_user(transactional_db):
    """The browser tests' user (hana)."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username="hana", password=PASSWORD)


def sign_in(page: Page, username: str = "hana", password: str = PASSWORD) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="New conversation").first).to_be_visible()


def send(page: Page, text: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")


def ai_messages(page: Page):
    return page.locator("#messages .msg-ai")


def off_loop(function, *args, **kwargs):
    """Run ORM writes in a thread without Playwright's event loop (services publish events
    with async_to_sync, which refuses to run under a running loop)."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    def run():
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()
