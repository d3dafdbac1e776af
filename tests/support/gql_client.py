"""A third-party GraphQL client (gql) for the end-to-end tests: a token from the REST
sign-in, then queries and mutations over HTTP and subscriptions over graphql-transport-ws."""

from __future__ import annotations

import httpx
from gql import Client
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from tests.support.servers import LiveServer


async def sign_in(server: LiveServer, username: str, password: str) -> str:
    """A token from the REST sign-in endpoint, as any client gets one."""
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        response = await http.post(
            "/api/v1/auth/token/",
            json={"username": username, "password": password, "device_name": "gql"},
        )
    assert response.status_code == 200, response.text
    return response.json()["token"]


def http_client(server: LiveServer, token: str) -> Client:
    transport = HTTPXAsyncTransport(
        url=f"{server.url}/graphql/", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    return Client(transport=transport)


def ws_client(server: LiveServer, token: str) -> Client:
    transport = WebsocketsTransport(
        url=f"{server.ws_url}/graphql/",
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"authorization": f"Bearer {token}"},
    )
    return Client(transport=transport)
