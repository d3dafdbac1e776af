"""`make bench`: every benchmark that checks issue 21's targets, in its `--quick` mode, in
sequence, then one summary of their targets tables.

    python -m bench.quick [--only ttft,streaming]

Each benchmark runs as its own process (`python -m bench.<name> --quick`, output shown
as it comes) and ends with its targets table and a `TARGETS <name>: ...` line
(bench.common.print_targets). A MISS is a measurement, not an error: the exit status
is 0 when every benchmark ran to its targets table, whatever they measured, and 1 when
one failed to run (crashed, or ended without its table). The summary says which
targets missed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from bench.common import ROOT, TARGETS_MARK, table

# In the order of the items that they check (3, 2 and 1, 4, 5).
QUICK = ("ttft", "streaming", "idle_sockets", "history_paging")


def run(name: str) -> tuple[int, str | None, float]:
    """(exit status, its TARGETS line or None, seconds)."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", f"bench.{name}", "--quick"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # its lines as they come
    )
    summary = None
    assert process.stdout is not None
    for line in process.stdout:
        print(line, end="", flush=True)
        if line.startswith(f"{TARGETS_MARK} bench.{name}:"):
            summary = line.split(":", 1)[1].strip()
    return process.wait(), summary, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(QUICK), help="comma-separated names")
    args = parser.parse_args()
    names = [name for name in args.only.split(",") if name]
    rows, errors = [], []
    for name in names:
        print(f"\n=== python -m bench.{name} --quick", flush=True)
        status, summary, seconds = run(name)
        if status != 0 or summary is None:
            errors.append(name)
            summary = f"ERROR (exit status {status}{', no targets table' if not summary else ''})"
        rows.append([f"bench.{name}", f"{seconds:.0f} s", summary])
    print("\nmake bench: targets of every quick benchmark")
    print(table(["benchmark", "time", "targets"], rows))
    if errors:
        print(f"failed to run: {', '.join(errors)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
