"""Observability of the live paths (core/request_id.py, core/metrics.py): a turn
started over the chat websocket logs with the connection's request id, and a channel
layer that cannot publish is counted in `confab_channel_layer_publish_failures_total`."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from conversations.events import apublish, delta_event
from core.request_id import RequestIdLogFilter
from tests.support.servers import free_port
from tests.support.sockets import Socket, ws_path
from tests.support.turns import turn_cleanup  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.addFilter(RequestIdLogFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_websocket_turn_logs_with_the_connections_request_id(llm, conversation, token):
    handler = Records()
    logging.getLogger("conversations").addHandler(handler)
    try:
        llm.reply_error(500)
        headers = [
            (b"authorization", f"Bearer {token}".encode()),
            (b"x-request-id", b"ws-conn-42"),
        ]
        ws = Socket(ws_path(conversation.pk), headers=headers)
        assert (await ws.connect())["type"] == "ready"
        await ws.send({"type": "message", "content": "Hello"})
        failed = await ws.until("message.failed")
        assert failed["message"]["error"]["code"] == "provider_error"
        await ws.close()
    finally:
        logging.getLogger("conversations").removeHandler(handler)
    turn_lines = [r for r in handler.records if r.getMessage().startswith("Turn ")]
    assert turn_lines, [r.getMessage() for r in handler.records]
    assert {r.request_id for r in turn_lines} == {"ws-conn-42"}


def publish_failures(event: str) -> float:
    name = "confab_channel_layer_publish_failures_total"
    return REGISTRY.get_sample_value(name, {"event": event}) or 0.0


async def test_publish_failures_are_counted(settings):
    # A real Redis channel layer whose server is not there: every publish fails.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": f"redis://127.0.0.1:{free_port()}/0"}],
                "prefix": "confab-test-down",
            },
        }
    }
    before = publish_failures("message.delta")
    event = delta_event(conversation_id=1, message_id=1, index=0, offset=0, delta="x")

    assert await apublish(event) is False

    assert publish_failures("message.delta") == before + 1
