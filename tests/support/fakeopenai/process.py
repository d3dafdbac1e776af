"""The fake server in a separate process (`python -m tests.support.fakeopenai`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.support.fakeopenai.scripts import Step, as_step, step_from_dict, step_to_dict
from tests.support.fakeopenai.server import FakeOpenAI

logger = logging.getLogger(__name__)

READY_PREFIX = "FAKE_OPENAI_READY "


class FakeOpenAIProcess:
    """Runs ``python -m tests.support.fakeopenai`` in a subprocess and scripts it over HTTP.

    Note that an in-process ``FakeOpenAI`` already serves other processes (it listens on a real
    TCP port); use this class when the fake must outlive or be isolated from the test process.
    ``requests()`` returns ``RecordedRequest.to_dict()`` dicts.

    The benchmarks' fake LLM (bench/fakellm.py) is this class with another ``module`` (the
    same server with a larger listen backlog) and more patience: one way to start, stop and
    script the process for tests and benchmarks.
    """

    # ``python -m <module>`` serves the fake: ``main()`` below, or a wrapper around it.
    module = "tests.support.fakeopenai"
    # Seconds ``stop()`` waits after SIGTERM before SIGKILL.
    stop_timeout = 5.0

    def __init__(
        self,
        port: int = 0,
        *,
        script: Sequence[Step | Mapping[str, Any]] = (),
        startup_timeout: float = 15.0,
    ) -> None:
        self.port = port
        self.script = [step_to_dict(as_step(step)) for step in script]
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    @property
    def base_url(self) -> str:
        """OpenAI ``base_url`` for clients, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    def start(self) -> Self:
        """Start the subprocess and wait until it accepts connections; returns ``self``."""
        command = [sys.executable, "-m", self.module, "--port", str(self.port)]
        if self.script:
            command += ["--script", json.dumps(self.script)]
        project_root = Path(__file__).resolve().parents[3]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            command, cwd=project_root, env=env, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        # select() gives readline a deadline, so a broken child cannot hang the test session.
        ready, _, _ = select.select([self.process.stdout], [], [], self.startup_timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"fake OpenAI process did not start (got {line!r})")
        self.url = line[len(READY_PREFIX) :].strip().removesuffix("/v1")
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def stop(self) -> None:
        """Terminate the subprocess (SIGTERM, then SIGKILL after ``stop_timeout`` seconds)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def enqueue(self, *steps: Step | Mapping[str, Any]) -> None:
        """Queue steps on the server (``POST /_fake/script``)."""
        self._call("POST", "/_fake/script", [step_to_dict(as_step(step)) for step in steps])

    def requests(self) -> list[dict[str, Any]]:
        """Requests recorded by the server (``GET /_fake/requests``)."""
        result: list[dict[str, Any]] = self._call("GET", "/_fake/requests")
        return result

    def reset(self) -> None:
        """Clear queued steps and recorded requests (``POST /_fake/reset``)."""
        self._call("POST", "/_fake/reset")

    def _call(self, method: str, path: str, payload: Any = None, timeout: float = 10) -> Any:
        data = json.dumps(payload).encode() if payload is not None else b""
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("content-type", "application/json")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _load_script(value: str) -> list[Step]:
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    data = json.loads(text)
    return [step_from_dict(step) for step in (data if isinstance(data, list) else [data])]


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.fakeopenai",
        description="Fake OpenAI chat-completions server.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument(
        "--script",
        help="JSON list of steps (or @path to a JSON file) served before the default reply",
    )
    args = parser.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with FakeOpenAI(args.host, args.port) as fake:
        if args.script:
            fake.enqueue(*_load_script(args.script))
        print(f"{READY_PREFIX}{fake.base_url}", flush=True)
        # Event.wait() with a timeout keeps the main thread responsive to signals.
        while not stop.wait(0.5):
            pass
