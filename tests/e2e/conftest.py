"""The browser tests' Chromium (`tests.support.browser`), one per test module."""

from tests.support.browser import browser  # noqa: F401
