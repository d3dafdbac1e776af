"""Live Confab servers for end-to-end tests: real uvicorn processes on 127.0.0.1.

`confab_server` starts one process, `live_server_factory` any number (scale-out
tests), each on a random port against the test database (PostgreSQL, or the
SQLite test file: the servers must see what the test commits, so these tests use
`transactional_db`) and the same Redis namespace, with the fake OpenAI
server as provider.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TypeVar

import httpx
import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        # The test database is a file (tests/settings.py): the servers open it too.
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or "postgres"
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


@dataclass
class LiveServer:
    """One running uvicorn process serving Confab."""

    port: int
    process: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    # Seconds `stop()` waits after SIGTERM before it kills the process group.
    stop_timeout: ClassVar[float] = 10.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the whole process group (uvicorn and any worker processes)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.kill()


Server = TypeVar("Server", bound=LiveServer)


def launch_uvicorn(
    server_class: type[Server],
    *,
    settings: str,
    env: dict[str, str],
    log_dir: Path,
    log_prefix: str = "server",
    workers: int = 1,
    extra_args: list[str] | None = None,
    startup_timeout: float = 30.0,
    health_timeout: float = 1.0,
    poll_interval: float = 0.1,
    ready: Callable[[Server], bool] | None = None,
) -> Server:
    """Start `uvicorn backend.asgi:application` on a free loopback port in its own process
    group and wait until /healthz answers 200 (and `ready(server)`, when given, is true).

    Shared by the live-server tests (`start_server`) and the benchmarks
    (bench/server.py): both need the same command line, log capture and start-up wait,
    and differ only in settings, environment, log location and patience. It needs
    neither pytest nor a database connection, so bench/ can import it. `env` is laid
    over os.environ; `extra_args` are appended to the command line (later flags win).
    """
    port = free_port()
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    log_path = log_dir / f"{log_prefix}-{port}.log"
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
        *(extra_args or []),
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
    server = server_class(port=port, process=process, log_path=log_path, env=full_env)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited early:\n{server.log()}")
        try:
            healthy = httpx.get(f"{server.url}/healthz", timeout=health_timeout).status_code == 200
            if healthy and (ready is None or ready(server)):
                return server
        except httpx.HTTPError:
            pass
        time.sleep(poll_interval)
    server.stop()
    raise RuntimeError(f"uvicorn did not start:\n{server.log()}")


def start_server(
    tmp_path: Path,
    *,
    extra_env: dict[str, str] | None = None,
    workers: int = 1,
    extra_args: list[str] | None = None,
) -> LiveServer:
    """Start uvicorn against the test database; `extra_args` are appended to its command
    line (later flags win, e.g. `["--access-log", "--log-level", "debug"]`)."""
    return launch_uvicorn(
        LiveServer,
        settings="tests.settings",
        env={"DATABASE_URL": database_url(), **(extra_env or {})},
        log_dir=tmp_path,
        workers=workers,
        extra_args=extra_args,
    )


@pytest.fixture
def live_server_factory(transactional_db, llm, tmp_path) -> Iterator:
    """Start Confab servers: `factory(extra_env=None, workers=1, extra_args=None) -> LiveServer`."""
    servers: list[LiveServer] = []

    def factory(
        extra_env: dict[str, str] | None = None,
        workers: int = 1,
        extra_args: list[str] | None = None,
    ) -> LiveServer:
        env = {"OPENAI_BASE_URL": llm.base_url, **(extra_env or {})}
        server = start_server(tmp_path, extra_env=env, workers=workers, extra_args=extra_args)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def confab_server(live_server_factory, seed_agents) -> LiveServer:
    """One live Confab server (uvicorn, 1 worker). Not named `live_server`: that is
    pytest-django's fixture, and its autouse helper expects its own object."""
    return live_server_factory()
