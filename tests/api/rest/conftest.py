"""Fixtures of the REST tests: API clients (DRF's APIClient and httpx over ASGI),
per-test rate-limit counters, and helpers to read event streams."""

from __future__ import annotations

import asyncio
import copy
import uuid

import httpx
import pytest
from rest_framework.test import APIClient

from conversations.turns.engine import running_turn_count


@pytest.fixture(autouse=True)
def fresh_rate_limits(settings):
    """Rate-limit counters live in the cache: give each test its own key prefix."""
    caches = copy.deepcopy(settings.CACHES)
    prefix = caches["default"].get("KEY_PREFIX", "")
    caches["default"]["KEY_PREFIX"] = f"{prefix}-rest-{uuid.uuid4().hex}"
    settings.CACHES = caches


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def api(token) -> APIClient:
    """APIClient signed in as `user`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def other_api(other_token) -> APIClient:
    """APIClient signed in as `other_user`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {other_token}")
    return client


@pytest.fixture
async def asgi():
    """httpx client on the real ASGI application (no lifespan: ASGITransport sends none).

    Turns started by a test are awaited before the database is flushed.
    """
    from backend.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    for _ in range(200):
        if not running_turn_count():
            break
        await asyncio.sleep(0.05)
