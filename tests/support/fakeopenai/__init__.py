"""The fake OpenAI-compatible server: see `server` for what it speaks and how to script it.

- `scripts`: the steps a test queues (text, tool calls, errors, with timing);
- `replies`: a step as streamed chunks or a whole completion;
- `wire`: the little HTTP/1.1 it needs;
- `recorded`: what it received;
- `process`: the same server in another process (`python -m tests.support.fakeopenai`);
- `fake_openai`: the pytest fixture.
"""

from collections.abc import Iterator

import pytest

from tests.support.fakeopenai.process import FakeOpenAIProcess
from tests.support.fakeopenai.recorded import RecordedRequest
from tests.support.fakeopenai.scripts import (
    DEFAULT_REPLY,
    ErrorReply,
    Step,
    TextReply,
    ToolCall,
    ToolCallsReply,
    step_from_dict,
    step_to_dict,
)
from tests.support.fakeopenai.server import FakeOpenAI

__all__ = [
    "DEFAULT_REPLY",
    "ErrorReply",
    "FakeOpenAI",
    "FakeOpenAIProcess",
    "RecordedRequest",
    "Step",
    "TextReply",
    "ToolCall",
    "ToolCallsReply",
    "fake_openai",
    "step_from_dict",
    "step_to_dict",
]


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A started `FakeOpenAI` server, stopped after the test.

    Works for sync and async tests alike: the server runs its own event loop in a thread.
    Point clients at `fake_openai.base_url`.
    """
    with FakeOpenAI() as fake:
        yield fake
