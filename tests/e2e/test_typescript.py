"""TypeScript types from `openapi.yaml` (openapi-typescript), checked with `tsc`.

Does what `make ts-types` does, in a temporary copy of `sdk/typescript/`: `npm ci`
(the pinned openapi-typescript and typescript), generate `build/confab.d.ts` from the
committed schema, and type-check `usage.ts` (strict). Then checks the other way round:
`wrong_usage.ts` must fail, with exactly the error marked on each of its lines, so a
schema that types everything as `any` or `string` cannot pass.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "sdk" / "typescript"
FILES = (
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "tsconfig.wrong.json",
    "usage.ts",
    "wrong_usage.ts",
)
MARKER = re.compile(r"// error (TS\d+)\s*$")
DIAGNOSTIC = re.compile(r"^wrong_usage\.ts\((\d+),\d+\): error (TS\d+):", re.MULTILINE)

pytestmark = pytest.mark.timeout(300)


def run(command: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of sdk/typescript with its dependencies installed and the types generated."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed (apt-get install nodejs npm); CI has it")
    folder = tmp_path_factory.mktemp("typescript")
    for name in FILES:
        shutil.copy(PACKAGE / name, folder / name)
    installed = run([npm, "ci", "--no-audit", "--no-fund"], folder)
    assert installed.returncode == 0, f"npm ci failed:\n{installed.stdout}\n{installed.stderr}"
    generated = run(
        [
            str(folder / "node_modules" / ".bin" / "openapi-typescript"),
            str(ROOT / "openapi.yaml"),
            "-o",
            "build/confab.d.ts",
        ],
        folder,
    )
    assert generated.returncode == 0, f"{generated.stdout}\n{generated.stderr}"
    return folder


def tsc(project: Path, *args: str) -> subprocess.CompletedProcess:
    return run([str(project / "node_modules" / ".bin" / "tsc"), "--noEmit", *args], project)


def test_usage_type_checks_against_the_generated_types(project):
    types = (project / "build" / "confab.d.ts").read_text()
    assert (
        "export interface paths" in types and '"/api/v1/conversations/{conversation_id}/' in types
    )
    checked = tsc(project)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_wrong_usage_fails_exactly_where_marked(project):
    source = (project / "wrong_usage.ts").read_text().splitlines()
    expected = {
        (number, match.group(1))
        for number, line in enumerate(source, start=1)
        if (match := MARKER.search(line))
    }
    assert len(expected) >= 5
    checked = tsc(project, "-p", "tsconfig.wrong.json")
    assert checked.returncode != 0
    found = {(int(line), code) for line, code in DIAGNOSTIC.findall(checked.stdout)}
    assert found == expected, checked.stdout
    # usage.ts (imported by wrong_usage.ts) stays clean.
    assert "usage.ts(" not in checked.stdout.replace("wrong_usage.ts(", "")
