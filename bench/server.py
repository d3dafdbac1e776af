"""Live servers for the benchmarks: uvicorn (bench settings) and the fake OpenAI server,
as separate processes on 127.0.0.1 only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import ROOT, database_url, process_tree, redis_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Uvicorn:
    """A uvicorn server (one master, `workers` worker processes) running Confab."""

    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The master and its workers (for CPU accounting)."""
        return process_tree(self.process.pid)

    def worker_pids(self) -> list[int]:
        pids = self.pids()
        return pids[1:] if len(pids) > 1 else pids

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def __enter__(self) -> Uvicorn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_uvicorn(
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    settings: str = "bench.settings",
    startup_timeout: float = 60.0,
) -> Uvicorn:
    """Start `uvicorn backend.asgi:application` on a free loopback port and wait for /healthz."""
    port = free_port()
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        "BENCH_DATABASE_URL": database_url(),
        "REDIS_URL": redis_url(),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    log_path = Path(tempfile.gettempdir()) / f"confab-bench-uvicorn-{port}.log"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "backend.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--ws-per-message-deflate",
        "false",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Uvicorn(port=port, process=process, log_path=log_path)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited early:\n{server.log()}")
        try:
            healthy = httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200
            # With several workers, wait until every worker process is up.
            if healthy and (workers == 1 or len(server.pids()) > workers):
                time.sleep(0.5)
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"uvicorn did not start:\n{server.log()}")
