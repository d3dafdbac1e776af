"""The export streams under ASGI: Django's handler gets an async iterator (a sync one it
would read whole into a list first, with a warning), and the body is read from the
database while it is being sent."""

from __future__ import annotations

import asyncio
import io
import json
import warnings
import zipfile
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from langchain_core.messages import AIMessage, HumanMessage

from backend.asgi import application
from conversations import services
from conversations.models import ConversationMessage
from conversations.services.messages import build_message

pytestmark = pytest.mark.django_db(transaction=True)


async def asgi_get(path: str, token: str, on_first_body: Any = None) -> tuple[int, list[bytes]]:
    """GET `path` through the ASGI application; the status and each body message."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path.split("?")[0],
        "raw_path": path.split("?")[0].encode(),
        "query_string": path.partition("?")[2].encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent = False
    status, bodies = None, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and message.get("body"):
            if not bodies and on_first_body is not None:
                await on_first_body()
            bodies.append(message["body"])

    await application(scope, receive, send)
    return status, bodies


@pytest.fixture
def long_conversation(user, conversation):
    rows = [
        build_message(
            conversation=conversation,
            message=(HumanMessage if i % 2 == 0 else AIMessage)(f"message {i} " + "x" * 200),
        )
        for i in range(1_200)
    ]
    ConversationMessage.objects.bulk_create(rows)
    return conversation


async def test_a_conversation_streams_while_it_is_read(long_conversation, token):
    late = "arrived after the first bytes were sent"

    @sync_to_async
    def append_late() -> None:
        services.append_message(conversation=long_conversation, message=HumanMessage(late))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, bodies = await asgi_get(
            f"/api/v1/conversations/{long_conversation.pk}/export/", token, append_late
        )
    assert status == 200
    assert not [w for w in caught if "synchronous iterators" in str(w.message)]
    assert len(bodies) >= 3
    # The message stored after the first bytes went out is in the export: the rest was
    # read from the database while the response was being sent.
    messages = json.loads(b"".join(bodies))["conversations"][0]["messages"]
    assert len(messages) == 1_201 and messages[-1]["text"] == late


async def test_the_zip_streams_under_asgi(long_conversation, token):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status, bodies = await asgi_get("/api/v1/export/", token)
    assert status == 200
    assert not [w for w in caught if "synchronous iterators" in str(w.message)]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(bodies)))
    assert archive.testzip() is None
    document = json.loads(archive.read(f"confab-export/conversations/{long_conversation.pk}.json"))
    assert len(document["conversations"][0]["messages"]) == 1_200
