"""Pytest fixture for the fake OpenAI server.

Import it into a conftest (or a test module) to make it available::

    from tests.fakeopenai_fixture import fake_openai  # noqa: F401
"""

from collections.abc import Iterator

import pytest

from tests.fakeopenai import FakeOpenAI


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A started ``FakeOpenAI`` server, stopped after the test.

    Works for sync and async tests alike: the server runs its own event loop in a thread.
    Point clients at ``fake_openai.base_url``.
    """
    with FakeOpenAI() as fake:
        yield fake
