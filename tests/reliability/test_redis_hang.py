"""A Redis that accepts connections and never answers (issue 14, "also known").

A Redis that is down refuses the connect and every client fails at once; one that
hangs (a stuck server, a black-holing network path, a full proxy) accepted the
connection and then nothing came back: publishes blocked until the OS gave up
(never, on an established connection) and the request or turn that published with
them. Every Redis client now has a connect and a read timeout
(CONFAB_REDIS_CONNECT_TIMEOUT, CONFAB_REDIS_SOCKET_TIMEOUT).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from channels.layers import get_channel_layer
from django.core.cache import caches
from redis.exceptions import RedisError

from core.cache import count_hit
from core.channel_layers import PipelinedPubSubChannelLayer
from tests.support.live_clients import arows, auth, wait_idle

pytestmark = pytest.mark.django_db(transaction=True)

GUARD = 20  # seconds: a hang fails the test instead of blocking the run


class SilentServer:
    """A TCP server on loopback that accepts every connection, reads what is sent and
    never answers."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def silent_redis() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def hung_settings(settings, url: str, timeout: float = 0.5) -> None:
    options = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    settings.CACHES = {
        "default": {
            "BACKEND": "core.cache.SharedPoolRedisCache",
            "LOCATION": url,
            "OPTIONS": options,
        }
    }
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "core.channel_layers.PipelinedPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": url, **options}]},
        }
    }


def test_the_settings_give_every_redis_client_both_timeouts(settings):
    options = settings.REDIS_CLIENT_OPTIONS
    assert options == {
        "socket_connect_timeout": settings.CONFAB_REDIS_CONNECT_TIMEOUT,
        "socket_timeout": settings.CONFAB_REDIS_SOCKET_TIMEOUT,
    }
    assert options["socket_connect_timeout"] > 0 and 0 < options["socket_timeout"] <= 5
    if settings.REDIS_URL:
        (host,) = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
        assert {key: host[key] for key in options} == options
        assert settings.CACHES["default"]["OPTIONS"] == options


async def test_cache_calls_and_publishes_fail_instead_of_hanging(settings, silent_redis):
    hung_settings(settings, silent_redis.url)

    def cache_calls() -> None:
        with pytest.raises(RedisError):
            caches["default"].get("anything")
        with pytest.raises(RedisError):
            count_hit(caches["default"], "rate_user_1", 60)

    await asyncio.wait_for(asyncio.to_thread(cache_calls), GUARD)
    layer = get_channel_layer()
    assert isinstance(layer, PipelinedPubSubChannelLayer)
    with pytest.raises(RedisError):
        await asyncio.wait_for(layer.group_send("g", {"type": "x"}), GUARD)
    await layer.flush()
    assert silent_redis.connections  # the connections were made: it hung, not refused


async def test_a_subscriber_idle_longer_than_the_socket_timeout_still_receives(
    settings, private_redis
):
    """The read timeout must not break pub/sub: its receiver polls with its own short
    timeout, so an idle subscription outlives the socket timeout."""
    hung_settings(settings, private_redis.url, timeout=0.3)
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add("idle", channel)
    await asyncio.sleep(1.5)  # five socket timeouts without a message
    await layer.group_send("idle", {"type": "ping", "n": 1})
    message = await asyncio.wait_for(layer.receive(channel), GUARD)
    assert message == {"type": "ping", "n": 1}
    await layer.flush()


async def test_a_hung_redis_does_not_hold_requests_or_turns(
    live_server_factory, llm, conversation, token, silent_redis
):
    server = live_server_factory(
        extra_env={
            "REDIS_URL": silent_redis.url,
            "CONFAB_REDIS_CONNECT_TIMEOUT": "0.5",
            "CONFAB_REDIS_SOCKET_TIMEOUT": "0.5",
        }
    )
    try:
        async with httpx.AsyncClient(
            base_url=server.url, headers=auth(token), timeout=GUARD
        ) as rest:
            # Rate limits that cannot be counted are skipped (logged): the request answers.
            assert (await rest.get("/api/v1/conversations/")).status_code == 200
            # A turn publishes its events: each publish fails, the turn is stored.
            llm.reply_text(["stored ", "anyway"])
            response = await rest.post(
                f"/api/v1/conversations/{conversation.pk}/messages/", json={"content": "hi"}
            )
            assert response.status_code == 201, response.text
            assert response.json()["ai_message"]["text"] == "stored anyway"
    except BaseException as exc:
        raise AssertionError(f"server log:\n{server.log()[-4000:]}") from exc
    await wait_idle(conversation.pk)
    rows = await arows(conversation.pk)
    assert [(r["role"], r["status"], r["text"]) for r in rows] == [
        ("human", "complete", "hi"),
        ("ai", "complete", "stored anyway"),
    ]
    assert silent_redis.connections
