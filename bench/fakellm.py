"""The fake OpenAI server (tests/fakeopenai.py) as a separate process for the benchmarks.

    python -m bench.fakellm [--port 0]

The same server as `python -m tests.fakeopenai`, with a listen backlog of 4096
instead of asyncio's 100: a thousand turns opening their provider connections at
once would otherwise overflow the backlog and wait a SYN retry (1 s), which is an
artefact of the fake, not of Confab.
"""

from __future__ import annotations

import asyncio
import functools
import json
import select
import subprocess
import sys
import urllib.request
from typing import Any

from bench.common import ROOT, cpu_seconds

READY_PREFIX = "FAKE_OPENAI_READY "


class FakeLLM:
    """`python -m bench.fakellm` in a subprocess, scripted over its control endpoints."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> FakeLLM:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.fakellm"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"fake LLM did not start ({line!r})")
        self.url = line[len(READY_PREFIX) :].strip().removesuffix("/v1")
        return self

    def cpu(self) -> float:
        return cpu_seconds([self.process.pid]) if self.process else 0.0

    def call(self, method: str, path: str, payload: Any = None, timeout: float = 60) -> Any:
        data = json.dumps(payload).encode() if payload is not None else b""
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("content-type", "application/json")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    asyncio.start_server = functools.partial(asyncio.start_server, backlog=4096)
    from tests import fakeopenai

    fakeopenai.main(sys.argv[1:])


if __name__ == "__main__":
    main()
