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
    # QUOTA_EXCEEDED adds when the quota resets and which one is spent.
    quota = {"resets_at", "period", "metric"} if code == "QUOTA_EXCEEDED" else set()
    assert set(body) <= {"type", "code", "detail", "fields", "request_id", *quota}
    assert isinstance(body["type"], str) and isinstance(body["detail"], str)
    # Every error names its request (core/request_id.py), as its X-Request-ID header does.
    assert body["request_id"] == response.headers["X-Request-ID"], body
    return body


def comparable(response: Any) -> Any:
    """A response's body as "the same answer" means it: a JSON object without its
    `request_id` (each response names its own request), any other body as bytes."""
    try:
        body = response.json()
    except ValueError:
        return response.content
    if isinstance(body, dict):
        body.pop("request_id", None)
    return body
