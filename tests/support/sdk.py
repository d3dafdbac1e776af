"""The generated Python SDK for end-to-end tests: generated from the committed
`openapi.yaml` exactly as `make sdk` does (with the streaming helper copied in), imported
from a temporary folder, and a few helpers to use it."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PACKAGE = "confab_client"
PASSWORD = "sdk-password-correct-horse"


def generate_sdk(output: Path) -> str:
    """Run openapi-python-client like `make sdk` (only the output path differs)."""
    command = [
        str(BIN / "openapi-python-client"),
        "generate",
        "--path",
        str(ROOT / "openapi.yaml"),
        "--output-path",
        str(output),
        "--overwrite",
        "--meta",
        "none",
        "--config",
        str(ROOT / "sdk" / "config.yaml"),
    ]
    # The generator formats its output with ruff, found on PATH (the venv's).
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"generation failed:\n{done.stdout}\n{done.stderr}"
    shutil.copy(ROOT / "sdk" / "streaming.py", output / "streaming.py")
    return done.stdout + done.stderr


@contextmanager
def generated_sdk(folder: Path) -> Iterator[SimpleNamespace]:
    """The generated package imported from `folder`, its modules by short names
    (`sdk.models`, `sdk.auth_me`, `sdk.sync`, `sdk.streaming`, …)."""
    generate_sdk(folder / PACKAGE)
    sys.path.insert(0, str(folder))
    try:
        package = importlib.import_module(PACKAGE)
        modules: dict[str, Any] = {
            "package": package,
            "models": importlib.import_module(f"{PACKAGE}.models"),
            "streaming": importlib.import_module(f"{PACKAGE}.streaming"),
        }
        # Every tag's operations (one module per operationId, unique across tags).
        for module in sorted((Path(package.__file__).parent / "api").glob("*/*.py")):
            if module.stem != "__init__":
                modules[module.stem] = importlib.import_module(
                    f"{PACKAGE}.api.{module.parent.name}.{module.stem}"
                )
        yield SimpleNamespace(**modules)
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def expect(result: Any, model: type) -> Any:
    """The parsed response, asserted to be `model` (e.g. `Token` or `Error`)."""
    assert isinstance(result, model), f"expected {model.__name__}, got {result!r}"
    return result


def sign_up(sdk: SimpleNamespace, base_url: str, username: str) -> Any:
    """Register `username` with the SDK and return an AuthenticatedClient for it."""
    m = sdk.models
    anonymous = sdk.package.Client(base_url=base_url, raise_on_unexpected_status=True)
    token = expect(
        sdk.auth_register.sync(
            client=anonymous,
            body=m.RegisterRequest(username=username, password=PASSWORD, device_name="Phone"),
        ),
        m.Token,
    )
    return sdk.package.AuthenticatedClient(
        base_url=base_url,
        token=token.token,
        timeout=httpx.Timeout(30),
        raise_on_unexpected_status=True,
    )


__all__ = ["PACKAGE", "PASSWORD", "expect", "generated_sdk", "sign_up"]
