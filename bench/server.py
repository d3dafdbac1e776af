"""Live servers for the benchmarks: uvicorn (bench settings) and the fake OpenAI server,
as separate processes on 127.0.0.1 only.

Starting uvicorn and waiting for it is `tests.live.launch_uvicorn`, the same code the
live-server tests run (both are dev-only, and tests/ is a package): one command line and
one start-up wait, so a benchmark measures the server the end-to-end tests exercise.
What is the benchmarks' own is here: bench settings and database, a log in the temp
directory, more patience (60 s to start, 15 s to stop) and, with several workers,
waiting until every worker process is up.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import database_url, process_tree, redis_url
from tests.support.servers import LiveServer, launch_uvicorn


class Uvicorn(LiveServer):
    """A uvicorn server (one master, `workers` worker processes) running Confab."""

    stop_timeout = 15.0

    def pids(self) -> list[int]:
        """The master and its workers (for CPU accounting)."""
        return process_tree(self.process.pid)

    def worker_pids(self) -> list[int]:
        pids = self.pids()
        return pids[1:] if len(pids) > 1 else pids

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
    extra_args: list[str] | None = None,
) -> Uvicorn:
    """Start `uvicorn backend.asgi:application` on a free loopback port and wait for /healthz
    (`extra_args`: more uvicorn flags)."""
    server = launch_uvicorn(
        Uvicorn,
        settings=settings,
        env={"BENCH_DATABASE_URL": database_url(), "REDIS_URL": redis_url(), **(env or {})},
        log_dir=Path(tempfile.gettempdir()),
        log_prefix="confab-bench-uvicorn",
        workers=workers,
        extra_args=["--log-level", "warning", *(extra_args or [])],
        startup_timeout=startup_timeout,
        health_timeout=2,
        poll_interval=0.2,
        # With several workers, wait until every worker process is up.
        ready=lambda server: workers == 1 or len(server.pids()) > workers,
    )
    time.sleep(0.5)
    return server
