"""Real infrastructure daemons for the scale tests, each on a free 127.0.0.1 port in a
scratch directory of its own: PgBouncer, PostgreSQL clusters (a primary and its
streaming replica), Redis nodes and Sentinels. Debian's binaries, started and stopped
by the test; `.ci/run` installs the ones a fresh machine lacks.

PostgreSQL and PgBouncer refuse to run as root: as root, their scratch directories
belong to the `postgres` user and they run as that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.servers import free_port

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def pg_binary(name: str) -> str:
    """Debian's PostgreSQL server binaries live outside PATH (initdb, pg_ctl, postgres)."""
    for directory in PG_BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (apt-get install postgresql)")
    return found


def require(binary: str, package: str) -> str:
    found = shutil.which(binary) or (
        f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None
    )
    if found is None:
        pytest.skip(f"{binary} is not installed: apt-get install {package} (.ci/run does)")
    return found


def as_root() -> bool:
    return os.geteuid() == 0


def daemon_user_prefix() -> list[str]:
    """Run a PostgreSQL/PgBouncer command as `postgres` when we are root."""
    return ["runuser", "-u", "postgres", "--"] if as_root() else []


def scratch_dir(prefix: str) -> Path:
    """A fresh directory the daemon user owns (pytest's tmp_path is root's and 0700)."""
    path = Path(tempfile.mkdtemp(prefix=f"confab-{prefix}-"))
    path.chmod(0o700)
    if as_root():
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def write_owned(path: Path, text: str) -> None:
    path.write_text(text)
    if as_root():
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


# --- PgBouncer -------------------------------------------------------------------------


@dataclass
class PgBouncer:
    """Debian's pgbouncer in transaction mode in front of one PostgreSQL server."""

    port: int
    directory: Path
    process: subprocess.Popen

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, command: str) -> list[tuple]:
        """A command on pgbouncer's admin console (SHOW STATS, SHOW POOLS...)."""
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} dbname=pgbouncer user=postgres", autocommit=True
        ) as conn:
            cursor = conn.cursor()
            cursor.execute(command)
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def log(self) -> str:
        return (self.directory / "pgbouncer.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # immediate shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_pgbouncer(
    *, upstream_port: int = 5432, pool_size: int = 4, max_client_conn: int = 400
) -> PgBouncer:
    binary = require("pgbouncer", "pgbouncer")
    directory = scratch_dir("pgbouncer")
    port = free_port()
    write_owned(directory / "userlist.txt", '"postgres" ""\n')
    write_owned(
        directory / "pgbouncer.ini",
        f"""[databases]
* = host=127.0.0.1 port={upstream_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = {max_client_conn}
max_db_connections = {pool_size}
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
""",
    )
    process = subprocess.Popen(
        [binary, *(["-u", "postgres"] if as_root() else []), str(directory / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port)
    except RuntimeError:
        process.kill()
        raise
    return PgBouncer(port=port, directory=directory, process=process)


# --- PostgreSQL clusters --------------------------------------------------------------


@dataclass
class PgCluster:
    """A PostgreSQL cluster of our own (initdb), trusting 127.0.0.1 for replication too."""

    port: int
    directory: Path
    log_path: Path
    replica_of: PgCluster | None = None
    running: bool = field(default=False)

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*daemon_user_prefix(), *args], check=check, capture_output=True, text=True
        )

    def start(self) -> None:
        self.run(
            pg_binary("pg_ctl"),
            "-D",
            str(self.directory / "data"),
            "-l",
            str(self.log_path),
            "-o",
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1",
            "-w",
            "-t",
            "60",
            "start",
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self.run(
                pg_binary("pg_ctl"), "-D", str(self.directory / "data"), "-m", mode, "-w", "stop"
            )
            self.running = False

    def sql(self, statement: str, database: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=3) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


def start_primary() -> PgCluster:
    directory = scratch_dir("pg-primary")
    cluster = PgCluster(port=free_port(), directory=directory, log_path=directory / "server.log")
    cluster.run(
        pg_binary("initdb"),
        "-D",
        str(directory / "data"),
        "-U",
        "postgres",
        "-A",
        "trust",
        "--no-sync",
        "-E",
        "UTF8",
    )
    with (directory / "data" / "postgresql.conf").open("a") as conf:
        conf.write(
            "\nwal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n"
            "fsync = off\nsynchronous_commit = on\nfull_page_writes = off\n"
            "shared_buffers = 32MB\nmax_connections = 200\n"
        )
    with (directory / "data" / "pg_hba.conf").open("a") as hba:
        hba.write("host replication postgres 127.0.0.1/32 trust\n")
    cluster.start()
    return cluster


def start_replica(primary: PgCluster) -> PgCluster:
    """A streaming replica of `primary`: pg_basebackup -R, then started on its own port."""
    directory = scratch_dir("pg-replica")
    replica = PgCluster(
        port=free_port(),
        directory=directory,
        log_path=directory / "server.log",
        replica_of=primary,
    )
    replica.run(
        pg_binary("pg_basebackup"),
        "-h",
        "127.0.0.1",
        "-p",
        str(primary.port),
        "-U",
        "postgres",
        "-D",
        str(directory / "data"),
        "-R",
        "-X",
        "stream",
        "--no-sync",
        "-c",
        "fast",
    )
    replica.start()
    return replica


def wait_replayed(primary: PgCluster, replica: PgCluster, timeout: float = 20.0) -> None:
    """Until the replica has replayed everything the primary has written so far."""
    target = primary.sql("SELECT pg_current_wal_insert_lsn()::text")[0][0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        caught_up = replica.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")[0][0]
        if caught_up:
            return
        time.sleep(0.05)
    raise RuntimeError(f"replica did not replay up to {target} in {timeout} s")


# --- Redis and Sentinel ---------------------------------------------------------------


@dataclass
class RedisProcess:
    """One redis-server (a node or, with `sentinel`, a Sentinel)."""

    port: int
    directory: Path
    process: subprocess.Popen
    sentinel: bool = False

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_redis(
    directory: Path, *, replica_of: int | None = None, sentinel_config: str | None = None
) -> RedisProcess:
    binary = require("redis-server", "redis-server")
    port = free_port()
    node_dir = directory / f"{'sentinel' if sentinel_config else 'redis'}-{port}"
    node_dir.mkdir()
    if sentinel_config is not None:
        conf = node_dir / "sentinel.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {node_dir}\nlogfile {node_dir}/redis.log\n"
            f"sentinel resolve-hostnames no\n{sentinel_config}"
        )
        command = [binary, str(conf), "--sentinel"]
    else:
        command = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(node_dir),
            "--logfile",
            str(node_dir / "redis.log"),
        ]
        if replica_of is not None:
            command += ["--replicaof", "127.0.0.1", str(replica_of)]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
    )
    wait_for_port(port)
    return RedisProcess(
        port=port, directory=node_dir, process=process, sentinel=sentinel_config is not None
    )
