"""The browser tests' Chromium, live server and page (`tests.support.browser`)."""

from tests.support.browser import browser, server, web, web_user  # noqa: F401
