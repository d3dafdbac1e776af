"""Fixtures of the REST tests: API clients (DRF's APIClient and httpx over ASGI),
per-test rate-limit counters, and helpers to read event streams."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from typing import Any

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


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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


def parse_sse(body: str) -> list[dict[str, Any]]:
    """Events of a text/event-stream body: [{"event", "id", "data"}] (`id`: a position,
    str), comments skipped."""
    events = []
    for block in body.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        fields: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        events.append(
            {"event": fields["event"], "id": fields["id"], "data": json.loads(fields["data"])}
        )
    return events


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the API's error shape with this status and code; returns the body."""
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert body["code"] == code, body
    assert set(body) <= {"type", "code", "detail", "fields"}
    assert isinstance(body["type"], str) and isinstance(body["detail"], str)
    return body
