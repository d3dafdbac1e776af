"""Helpers of the REST tests: headers, the error shape, event streams, throttle rates."""

from __future__ import annotations

import json
from typing import Any


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def with_rates(settings, **rates: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


def parse_sse(body: str) -> list[dict[str, Any]]:
    """Events of a text/event-stream body: [{"event", "id", "data"}], comments skipped."""
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
            {"event": fields["event"], "id": int(fields["id"]), "data": json.loads(fields["data"])}
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
