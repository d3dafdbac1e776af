"""A credential revoked on one server process closes its sockets on another (issue 14.2).

Two real uvicorn processes on one PostgreSQL and one Redis: a chat websocket and
GraphQL websockets (graphql-transport-ws and legacy graphql-ws) open on A; the user
signs out everywhere over REST on B; every socket on A is closed 4401 within
seconds, through the channel layer (not the per-process sweep: it is set to an hour).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.support.requirements import needs_redis

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_redis("revocation between processes (the channel layer)"),
]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def graphql_socket(server: Any, token: str, protocol: str) -> Any:
    socket = await websockets.connect(f"{server.ws_url}/graphql/", subprotocols=[protocol])
    await socket.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    )
    ack = json.loads(await asyncio.wait_for(socket.recv(), 10))
    assert ack["type"] == "connection_ack", ack
    return socket


async def close_code(socket: Any, timeout: float) -> int | None:
    try:
        while True:
            await asyncio.wait_for(socket.recv(), timeout)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def test_signing_out_on_b_closes_sockets_on_a(live_server_factory, conversation, token):
    env = {"CONFAB_WS_AUTH_CHECK_SECONDS": "3600"}
    a = live_server_factory(extra_env=env)
    b = live_server_factory(extra_env=env)
    chat = await websockets.connect(
        f"{a.ws_url}/ws/conversations/{conversation.pk}/", additional_headers=auth(token)
    )
    assert json.loads(await asyncio.wait_for(chat.recv(), 10))["type"] == "ready"
    sockets = [
        chat,
        await graphql_socket(a, token, "graphql-transport-ws"),
        await graphql_socket(a, token, "graphql-ws"),
    ]
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=b.url, headers=auth(token), timeout=30) as client:
        response = await client.post("/api/v1/auth/logout-all/")
    assert response.status_code in (200, 204), response.text
    codes = await asyncio.gather(*(close_code(s, 10) for s in sockets))
    elapsed = time.monotonic() - started
    assert codes == [4401, 4401, 4401]
    print(f"closed 3 sockets on A {elapsed * 1000:.0f} ms after logout-all on B")
