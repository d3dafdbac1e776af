"""Request bodies are limited before anything reads them (issue 14, finding 7).

Django's ASGI handler read the whole body into a temporary file (on disk past 2.5 MB)
before any size or auth check: an unauthenticated 300 MB chunked POST left a 281 MB
temp file before its 400. Now (`core/body_limit.py`) a declared `Content-Length` over
the limit is refused at once, and a chunked body is cut off at the limit while it
streams, with nothing written to disk. Live uvicorn servers, raw sockets.
"""

from __future__ import annotations

import json
import os
import select
import socket
import time
from pathlib import Path

import httpx
import pytest

from backend.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 256_000  # CONFAB_MAX_BODY_BYTES's default
CHUNK = 64 * 1024


def open_files_under(pid: int, directory: Path) -> list[str]:
    """Files (deleted ones included: spooled temp files are unlinked) the process holds
    open under `directory`."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


def read_response(sock: socket.socket, timeout: float = 5.0) -> tuple[int, dict, bytes]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        if not part:
            break
        data += part
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        part = sock.recv(65536)
        if not part:
            break
        body += part
    return status, headers, body


def request_head(path: str, extra: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}\r\n"
    ).encode()


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    directory = tmp_path / "spool"
    directory.mkdir()
    return directory


@pytest.fixture
def server(live_server_factory, spool):
    # The server's temporary files (Django's spooled request bodies) go to `spool`.
    return live_server_factory(extra_env={"TMPDIR": str(spool)})


@pytest.mark.parametrize("path", ["/api/v1/auth/token/", "/graphql/", "/admin/login/"])
def test_a_declared_length_over_the_limit_is_refused_at_once(server, path):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(request_head(path, "Content-Length: 300000000\r\n"))
        # No body is sent: the answer must not wait for it.
        status, headers, body = read_response(sock)
    assert status == 413 and headers["connection"] == "close"
    if path.startswith("/graphql"):
        assert json.loads(body)["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
    else:
        assert json.loads(body)["code"] == "PAYLOAD_TOO_LARGE"
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_a_chunked_body_is_cut_off_at_the_limit_and_never_spooled(server, spool):
    """An unauthenticated chunked POST of up to 32 MB: the server answers 413 while the
    body streams, and at no moment holds a temporary file."""
    pid = server.process.pid
    sent, seen_files = 0, []
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(request_head("/api/v1/auth/token/", "Transfer-Encoding: chunked\r\n"))
        chunk = f"{CHUNK:x}\r\n".encode() + b"x" * CHUNK + b"\r\n"
        answered = False
        started = time.monotonic()
        while sent < 32_000_000 and time.monotonic() - started < 30:
            if select.select([sock], [], [], 0)[0]:
                answered = True
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                answered = True
                break
            sent += CHUNK
            if sent % (16 * CHUNK) == 0:
                seen_files += open_files_under(pid, spool)
        seen_files += open_files_under(pid, spool)
        assert answered, f"no answer after {sent} bytes"
        status, _, body = read_response(sock)
    assert status == 413, (status, body)
    assert json.loads(body)["code"] == "PAYLOAD_TOO_LARGE"
    assert seen_files == [] and list(spool.iterdir()) == []
    # Cut off near the limit, not after the whole body (kernel buffers hold a few MB).
    assert sent < 16_000_000, sent
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_bodies_within_the_limit_still_work(server, user):
    body = {"username": "alice", "password": "alice-password-1", "device_name": "x" * 50}
    response = httpx.post(f"{server.url}/api/v1/auth/token/", json=body)
    assert response.status_code == 200
    # Chunked, without a length, under the limit: passed on to the application (which
    # reads no body without a Content-Length, as before: Django's LimitedStream).
    chunks = iter([json.dumps(body).encode()])
    response = httpx.post(
        f"{server.url}/api/v1/auth/token/",
        content=chunks,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "VALIDATION_ERROR"


# --- per-path limits, in-process ---------------------------------------------------------


@pytest.fixture
async def http():
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_limits_are_per_path_prefix(http, settings):
    """A prefix can have a larger limit (uploads: CONFAB_MAX_UPLOAD_BYTES under
    /api/v1/files/) or a smaller one; the longest prefix wins; elsewhere
    CONFAB_MAX_BODY_BYTES."""
    settings.CONFAB_BODY_LIMITS = {
        "/api/v1/nothing/": 1_000_000,
        "/api/v1/nothing/small/": 1_000,
        "/api/v1/auth/": 1_000,
    }
    big, small = b"x" * (LIMIT + 1), b"x" * 2_000
    assert (await http.post("/api/v1/nothing/", content=big)).status_code == 404
    assert (await http.post("/api/v1/nothing/small/", content=small)).status_code == 413
    assert (await http.post("/api/v1/auth/token/", content=small)).status_code == 413
    assert (await http.post("/api/v1/other/", content=big)).status_code == 413
    assert (await http.post("/api/v1/other/", content=small)).status_code == 404
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    assert (await http.post("/api/v1/other/", content=small)).status_code == 413


def test_uploads_have_their_own_limit_setting(settings):
    from core.body_limit import body_limit

    assert body_limit("/api/v1/files/") == settings.CONFAB_MAX_UPLOAD_BYTES
    assert body_limit("/api/v1/files/abc/") == settings.CONFAB_MAX_UPLOAD_BYTES
    assert body_limit("/api/v1/conversations/") == settings.DATA_UPLOAD_MAX_MEMORY_SIZE
