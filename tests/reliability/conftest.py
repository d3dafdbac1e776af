"""Fixtures of the reliability tests: control of the local PostgreSQL cluster, and a
private Redis server that a test may kill and restart (never the shared one)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection, connections

from tests.support.requirements import POSTGRES_HINT, on_postgres
from tests.support.servers import free_port


class PostgresCluster:
    """The local cluster the test database lives on, stopped and started with pg_ctlcluster.

    Other test runs may share this cluster: keep outages short, and always start
    it again (the fixture does, whatever the test did).
    """

    def __init__(self, version: str, host: str, port: int) -> None:
        self.version = version
        self.host = host
        self.port = port

    def _ctl(self, action: str) -> None:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, "main", action],
            check=True,
            timeout=60,
            capture_output=True,
        )

    def accepts_connections(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        self._ctl("stop")

    def start(self, timeout: float = 30) -> None:
        """Start the cluster (if it is not running) and wait until it accepts connections."""
        if not self.accepts_connections():
            self._ctl("start")
        deadline = time.monotonic() + timeout
        while not self.accepts_connections():
            assert time.monotonic() < deadline, "PostgreSQL did not come back"
            time.sleep(0.1)


def local_cluster() -> PostgresCluster | None:
    """The cluster to restart, or None when this machine's setup does not allow it."""
    settings = connection.settings_dict
    host = settings.get("HOST") or "127.0.0.1"
    versions = os.listdir("/etc/postgresql") if os.path.isdir("/etc/postgresql") else []
    if (
        connection.vendor != "postgresql"
        or host not in ("127.0.0.1", "localhost")
        or len(versions) != 1
        or shutil.which("pg_ctlcluster") is None
        or os.geteuid() != 0
    ):
        return None
    return PostgresCluster(versions[0], host, int(settings.get("PORT") or 5432))


@pytest.fixture
def postgres(transactional_db) -> Iterator[PostgresCluster]:
    """The local PostgreSQL cluster; started again and this thread's dead connections
    dropped after the test (before the test database is flushed)."""
    if os.environ.get("CONFAB_SKIP_PG_RESTART", "") not in ("", "0"):
        pytest.skip("CONFAB_SKIP_PG_RESTART is set (other runs share this cluster)")
    if not on_postgres():
        pytest.skip(f"restarting PostgreSQL needs PostgreSQL: {POSTGRES_HINT}")
    cluster = local_cluster()
    if cluster is None:
        pytest.skip("needs a local PostgreSQL cluster controlled by pg_ctlcluster, as root")
    try:
        yield cluster
    finally:
        cluster.start()
        connections.close_all()


class PrivateRedis:
    """A redis-server of this test only, on its own port, without persistence."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            assert self.process.poll() is None, self.log_path.read_text()
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: Redis is gone at once, with everything it held."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    redis = PrivateRedis(tmp_path / "redis.log")
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()
