"""The fake OpenAI server (tests/support/fakeopenai/) as a separate process for the benchmarks.

    python -m bench.fakellm [--port 0]

The same server as `python -m tests.support.fakeopenai`, with a listen backlog of 4096
instead of asyncio's 100: a thousand turns opening their provider connections at
once would otherwise overflow the backlog and wait a SYN retry (1 s), which is an
artefact of the fake, not of Confab.

`FakeLLM` is the tests' `FakeOpenAIProcess` running this module: starting the process,
reading its ready line, stopping it and the control calls are one piece of code for
tests and benchmarks (both dev-only; tests/ is a package). What is the benchmarks' own
is here: the backlog, more patience, CPU accounting and a public `call`.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from typing import Any

from bench.common import cpu_seconds
from tests.support.fakeopenai import FakeOpenAIProcess
from tests.support.fakeopenai.process import main as serve


class FakeLLM(FakeOpenAIProcess):
    """`python -m bench.fakellm` in a subprocess, scripted over its control endpoints."""

    module = "bench.fakellm"
    stop_timeout = 10.0

    def __init__(self) -> None:
        super().__init__(startup_timeout=30.0)

    def cpu(self) -> float:
        return cpu_seconds([self.process.pid]) if self.process else 0.0

    def call(self, method: str, path: str, payload: Any = None, timeout: float = 60) -> Any:
        """A control request (`/_fake/...`); returns the decoded JSON answer."""
        return self._call(method, path, payload, timeout)


def main() -> None:
    # The fake calls asyncio.start_server when it starts, so the larger backlog applies.
    asyncio.start_server = functools.partial(asyncio.start_server, backlog=4096)
    serve(sys.argv[1:])


if __name__ == "__main__":
    main()
