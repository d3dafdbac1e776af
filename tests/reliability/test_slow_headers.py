"""Slow and huge request heads on a live uvicorn (issue 14, finding 14).

uvicorn has no timeout while a request head arrives and, with httptools, no limit on
its size: connections trickling a header line every few seconds were held for ever
(200 of 200 after 70 s), and a 10 MB head was buffered whole. Confab's protocol
(`backend.http_protocol`, which `make run` and docs/deploy.md use) answers 408 and
closes a connection whose head is not complete within CONFAB_HTTP_HEADER_TIMEOUT,
and 431 to a head over CONFAB_HTTP_MAX_HEADER_BYTES. The timeouts here are
liveness bounds (the server must close the connection while the client is still
sending), not speed measurements.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest
import websockets

from tests.support.slow_clients import PATIENCE, trickle

PROTOCOL = ["--http", "backend.http_protocol:HeadLimitedHttpToolsProtocol"]
HEADER_TIMEOUT = 1.0


@pytest.fixture
def server(live_server_factory, seed_agents):
    return live_server_factory(
        extra_env={"CONFAB_HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT)}, extra_args=PROTOCOL
    )


def test_a_slow_request_head_is_answered_408_and_closed(server):
    answer = trickle(server.port)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
    assert b"connection: close" in answer


def test_a_slow_second_request_on_a_kept_alive_connection_is_closed(server):
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    answer = trickle(server.port, first=request + b"GET /healthz HTTP/1.1\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer  # the first request is served
    assert b"HTTP/1.1 408 Request Timeout\r\n" in answer


def test_a_connection_that_sends_nothing_is_closed(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(PATIENCE)
        assert sock.recv(4096).startswith(b"HTTP/1.1 408")


def test_many_slow_connections_are_all_closed_and_others_are_served(server):
    sockets = []
    for _ in range(50):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n")
        sockets.append(sock)
    try:
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        for sock in sockets:
            sock.settimeout(PATIENCE)
            assert sock.recv(4096).startswith(b"HTTP/1.1 408"), "every slow head is closed"
    finally:
        for sock in sockets:
            sock.close()


def test_a_huge_request_head_is_refused(server):
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(PATIENCE)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        answer = b""
        try:
            for number in range(200):  # up to 10 MB, stopped by the server at 32 kB
                sock.sendall(f"X-Big-{number}: ".encode() + b"a" * 50_000 + b"\r\n")
        except OSError:
            pass
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except OSError:
            pass
    assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer


def test_ordinary_requests_bodies_and_websockets_are_unaffected(server, token):
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        # Several requests on one kept-alive connection, beyond the header timeout.
        for _ in range(3):
            assert client.get("/api/v1/auth/me/").status_code == 200
            time.sleep(HEADER_TIMEOUT / 2)

        # A body that arrives slower than the header timeout is not cut.
        parts = (b'{"agent": "assistant", ', b'"title": "slow body"}')

        def slow_body():
            for part in parts:
                time.sleep(HEADER_TIMEOUT * 1.5)
                yield part

        response = client.post(
            "/api/v1/conversations/",
            content=slow_body(),
            headers={
                "Content-Type": "application/json",
                "Content-Length": str(sum(len(part) for part in parts)),
            },
        )
        assert response.status_code == 201, response.text
        conversation_id = response.json()["id"]

    async def chat() -> dict:
        url = f"{server.ws_url}/ws/conversations/{conversation_id}/?token={token}"
        async with websockets.connect(url) as ws:
            await asyncio.sleep(HEADER_TIMEOUT * 1.5)  # an open socket is not a slow head
            await ws.send(json.dumps({"type": "ping"}))
            frames = [json.loads(await ws.recv()) for _ in range(2)]
            return {frame["type"]: frame for frame in frames}

    assert set(asyncio.run(chat())) == {"ready", "pong"}
