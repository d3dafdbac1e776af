"""Shared helpers of the benchmarks: Django setup on the bench database, timing
statistics, tables, machine facts, CPU accounting from /proc and a SQL log."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/confab_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)


def redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL", os.environ.get("REDIS_URL", DEFAULT_REDIS_URL))


def setup_django(*, redis: bool = True) -> None:
    """Configure Django with `bench.settings` (the confab_bench database)."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    if redis:
        os.environ.setdefault("REDIS_URL", redis_url())
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def ensure_database(*, migrate: bool = True) -> None:
    """Create the bench database if it is missing, then apply migrations."""
    import psycopg

    url = database_url()
    name = url.rsplit("/", 1)[1].split("?")[0]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def active_toggles() -> str:
    """The bench/settings.py experiment switches that are on, for the report."""
    names = [
        "BENCH_ASYNC_COMMIT",
        "BENCH_SWITCH_INTERVAL",
    ]
    on = [name for name in names if os.environ.get(name, "") not in ("", "0")]
    return ", ".join(on) or "none (the product's settings)"


# --- statistics and tables ----------------------------------------------------


@dataclass
class Summary:
    """Latency summary of a sample, in milliseconds."""

    count: int
    median: float
    mean: float
    p95: float
    p99: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Summary:
        ms = sorted(value * 1000 for value in seconds)
        if not ms:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan, nan)
        return cls(
            count=len(ms),
            median=statistics.median(ms),
            mean=statistics.fmean(ms),
            p95=percentile(ms, 95),
            p99=percentile(ms, 99),
            minimum=ms[0],
            maximum=ms[-1],
        )


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(pct / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def time_calls(fn: Callable[[], Any], *, repeat: int, warmup: int = 3) -> list[float]:
    """Wall-clock seconds of `repeat` calls of `fn` after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def fmt_ms(value: float) -> str:
    if value != value:  # NaN
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_ratio(value: float) -> str:
    if value != value:
        return "-"
    return f"{value:,.0f}x" if value >= 100 else f"{value:.2f}x"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (also readable on a terminal)."""
    rows = [[str(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# --- targets (issue 21's `--quick` tables) --------------------------------------------


@dataclass
class Target:
    """One row of a benchmark's targets table: `measured` against `target` by `op`
    ("<=", ">=", "<", ">", "==" or "info" for a figure reported without a target).
    `unit` follows the numbers ("x" for ratios, " ms", " MiB", "" for counts)."""

    name: str
    measured: float
    target: float
    op: str
    unit: str = "x"

    @property
    def passed(self) -> bool | None:
        if self.op == "info":
            return None
        value = self.measured
        if value != value:  # NaN: not measured
            return False
        return {
            "<=": value <= self.target,
            ">=": value >= self.target,
            "<": value < self.target,
            ">": value > self.target,
            "==": value == self.target,
        }[self.op]

    def _fmt(self, value: float) -> str:
        if value != value:
            return "-"
        if self.unit == "x":
            return fmt_ratio(value)
        if float(value).is_integer():
            return f"{value:,.0f}{self.unit}"
        return f"{fmt_ms(value)}{self.unit}"


TARGETS_MARK = "TARGETS"


def print_targets(bench: str, targets: Sequence[Target]) -> int:
    """Print the targets table every benchmark ends with (PASS / MISS per row, target
    and measured value) and a one-line summary `make bench` reads; returns the MISS
    count. A MISS is a measurement, not an error: benchmarks still exit 0."""
    rows = []
    for row in targets:
        passed = row.passed
        rows.append(
            [
                row.name,
                "-" if row.op == "info" else f"{row.op} {row._fmt(row.target)}",
                row._fmt(row.measured),
                "-" if passed is None else verdict(passed),
            ]
        )
    missed = [row.name for row in targets if row.passed is False]
    checked = sum(1 for row in targets if row.passed is not None)
    print(f"\nTargets ({bench})")
    print(table(["target", "wanted", "measured", "result"], rows))
    summary = f"{checked - len(missed)} PASS, {len(missed)} MISS"
    if missed:
        summary += ": " + "; ".join(missed)
    print(f"{TARGETS_MARK} {bench}: {summary}", flush=True)
    return len(missed)


# --- the machine -------------------------------------------------------------


def machine_info() -> dict[str, str]:
    """Facts to print with every result so later runs can be compared by ratio."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        pg = subprocess.run(
            ["psql", database_url(), "-Atc", "SHOW server_version"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pg = "unknown"
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "postgresql": pg or "unknown",
    }


def print_machine() -> None:
    info = machine_info()
    print(
        f"# {info['date']} - {info['cores']} cores ({info['cpu']}), "
        f"Python {info['python']}, PostgreSQL {info['postgresql']}"
    )


# --- CPU of server processes ---------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds used so far by `pids` (threads included)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def rss_mib(pids: Iterable[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


# --- py-spy on server processes ---------------------------------------------------


def start_spy(pid: int, out: str, *, mode: str = "idle", rate: int = 200) -> subprocess.Popen:
    """Record `pid` with py-spy (`pip install py-spy==0.4.3` into the venv) as a raw
    profile to `out` until `stop_spy`. `mode`: "idle" (every thread, waiting included:
    where wall time goes), "gil" (the thread holding the GIL: where CPU goes)."""
    flags = ["--gil"] if mode == "gil" else ["--threads", "--idle"]
    spy = str(Path(sys.executable).parent / "py-spy")
    command = [spy, "record", *flags, "-r", str(rate), "-f", "raw", "-o", out, "-p", str(pid)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_spy(spy: subprocess.Popen) -> None:
    spy.send_signal(2)  # SIGINT: py-spy writes its profile
    try:
        spy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()


# --- SQL statements of any thread --------------------------------------------


class QueryLog:
    """Every SQL statement run while active, on any Django connection of any thread.

    Connections are per thread; the wrapper goes onto the current thread's
    connection, onto asgiref's single sync thread's connection (where async ORM
    calls run) and onto every connection opened meanwhile (`connection_created`:
    the turn engine's thread pool opens one per service call).
    """

    def __init__(self) -> None:
        self.statements: list[str] = []
        self._lock = threading.Lock()
        self._connections: list[Any] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        with self._lock:
            self.statements.append(sql)
        return execute(sql, params, many, context)

    def _install(self, conn: Any) -> None:
        if self not in conn.execute_wrappers:
            conn.execute_wrappers.append(self)
            self._connections.append(conn)

    def _on_created(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        self._install(connection)

    def start(self) -> None:
        from asgiref.sync import SyncToAsync
        from django.db import connections
        from django.db.backends.signals import connection_created

        connection_created.connect(self._on_created, weak=False)
        # connections["default"] is the calling thread's own connection object.
        self._install(connections["default"])
        install = lambda: self._install(connections["default"])  # noqa: E731
        SyncToAsync.single_thread_executor.submit(install).result()

    def stop(self) -> None:
        from django.db.backends.signals import connection_created

        connection_created.disconnect(self._on_created)
        for conn in self._connections:
            if self in conn.execute_wrappers:
                conn.execute_wrappers.remove(self)
        self._connections.clear()

    def clear(self) -> None:
        with self._lock:
            self.statements.clear()

    def count(self, prefix: str = "") -> int:
        prefix = prefix.upper()
        return sum(1 for sql in self.statements if sql.lstrip().upper().startswith(prefix))


def fresh_database(name: str) -> str:
    """Point the benchmark at a new, empty database `name` on BENCH_DATABASE_URL's server
    (dropped first if it exists), migrated, with Django set up (no Redis); returns the
    server's URL (without a database)."""
    import psycopg

    base = database_url().rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["BENCH_DATABASE_URL"] = f"{base}/{name}"
    setup_django(redis=False)
    ensure_database()
    return base


def drop_database(name: str) -> None:
    """Drop a database `fresh_database` made (this process's connections closed first)."""
    import psycopg
    from django.db import connections

    connections.close_all()
    base = database_url().rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
