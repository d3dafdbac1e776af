"""Tokens never reach a log.

A live server runs with everything turned up: DEBUG (every SQL statement and
its parameters logged through colorlog), LOG_LEVEL=DEBUG, uvicorn's access log
and `--log-level debug` (websocket handshakes, protocol traces). Tokens are
used on every surface and in every way a client can send them (REST headers
with both schemes, GraphQL over HTTP, the chat websocket's header and
`?token=`, graphql-transport-ws `connection_init` and `?token=`), issued by
sign-in, revoked by logout, expired, mistyped. Afterwards the raw token
strings appear nowhere in the server's output. knox stores only a digest and
an 8-character `token_key` prefix; the prefix may appear in SQL, the token
may not.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async
from django.utils import timezone
from knox.models import get_token_model

from tests.support.live_clients import auth, frames_until, recv_json

pytestmark = pytest.mark.django_db(transaction=True)

VERBOSE = {"DEBUG": "1", "LOG_LEVEL": "DEBUG"}
UVICORN_VERBOSE = ["--access-log", "--log-level", "debug"]


@sync_to_async
def expired_token(user) -> str:
    instance, token = get_token_model().objects.create(user=user, name="old")
    get_token_model().objects.filter(pk=instance.pk).update(expiry=timezone.now() - timedelta(1))
    return token


async def ws_roundtrip(url: str, *, headers=None, init: dict | None = None, graphql=False):
    """Open a websocket, say something, and read until the server answers or closes."""
    kwargs = {"subprotocols": ["graphql-transport-ws"]} if graphql else {}
    try:
        async with websockets.connect(url, additional_headers=headers or {}, **kwargs) as socket:
            if graphql:
                await socket.send(json.dumps({"type": "connection_init", "payload": init or {}}))
                await recv_json(socket, 5)
                await socket.send(json.dumps({"type": "ping"}))
            else:
                await frames_until(socket, lambda f: f["type"] == "ready", 5)
                await socket.send(json.dumps({"type": "ping"}))
            await recv_json(socket, 5)
    except websockets.ConnectionClosed:
        pass  # refused (bad tokens): fine, the handshake was logged either way


async def test_tokens_never_appear_in_logs(live_server_factory, llm, user, token, conversation):
    server = live_server_factory(extra_env=VERBOSE, extra_args=UVICORN_VERBOSE)
    base = server.url
    chat = f"{server.ws_url}/ws/conversations/{conversation.pk}/"
    graphql_ws = f"{server.ws_url}/graphql/"
    mistyped = secrets.token_hex(32)
    expired = await expired_token(user)

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        signed_in = await client.post(
            "/api/v1/auth/token/",
            json={"username": "alice", "password": "alice-password-1", "device_name": "log test"},
        )
        assert signed_in.status_code == 200, signed_in.text
        issued = signed_in.json()["token"]
        tokens = {"fixture": token, "issued": issued, "mistyped": mistyped, "expired": expired}

        for scheme in ("Bearer", "Token"):
            for value in tokens.values():
                await client.get("/api/v1/auth/me/", headers={"Authorization": f"{scheme} {value}"})
        await client.get(f"/api/v1/auth/me/?token={token}")  # not a credential here; still secret
        llm.reply_text(["logged ", "reply"])
        sent = await client.post(
            f"/api/v1/conversations/{conversation.pk}/messages/",
            json={"content": "hello"},
            headers=auth(token),
        )
        assert sent.status_code == 201
        for value in tokens.values():
            await client.post("/graphql/", json={"query": "{ me { id } }"}, headers=auth(value))

        for value in tokens.values():
            await ws_roundtrip(f"{chat}?token={value}")
            await ws_roundtrip(chat, headers=auth(value))
            await ws_roundtrip(graphql_ws, init={"authorization": f"Bearer {value}"}, graphql=True)
            await ws_roundtrip(f"{graphql_ws}?token={value}", graphql=True)

        out = await client.post("/api/v1/auth/logout/", headers=auth(issued))
        assert out.status_code in (200, 204), out.text
        assert (await client.get("/api/v1/auth/me/", headers=auth(issued))).status_code == 401

    log = server.log()
    assert "?token=[redacted]" in log and "Bearer [redacted]" in log
    # The logging really was on: SQL with parameters, access lines, websocket handshakes.
    assert '"conversations_conversation"' in log and "knox" not in tokens
    assert '"GET /api/v1/auth/me/ HTTP/1.1" 401' in log
    assert '"WebSocket /ws/conversations/' in log
    for name, value in tokens.items():
        assert value not in log, f"the {name} token was logged"
