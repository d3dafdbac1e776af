"""GraphQL test helpers: an HTTP client on the real ASGI app, a graphql-transport-ws /
graphql-ws client on Channels' WebsocketCommunicator, and turn settling.

Every test here goes through `backend.asgi.application` (middleware, URL
routing, the token middleware, the view or the consumer) on PostgreSQL + Redis
when DATABASE_URL / REDIS_URL are set. They are transactional: the view and
the consumer use their own database connections.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from backend.asgi import application
from conversations.turns.engine import running_turn_count
from tests.support.graphql import TIMEOUT, GraphQLHTTP


@pytest_asyncio.fixture
async def gql() -> AsyncIterator[GraphQLHTTP]:
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield GraphQLHTTP(client)


@pytest_asyncio.fixture(autouse=True)
async def settle_turns() -> AsyncIterator[None]:
    """Let turns started by a test end before its data is flushed."""
    yield
    deadline = time.monotonic() + TIMEOUT
    while running_turn_count() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
