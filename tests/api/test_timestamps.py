"""One timestamp format on every surface and both databases.

The same stored message read through the REST history page, the REST message
detail, the SSE stream of its turn, the websocket's resume and GraphQL carries
the same `created_at` / `updated_at` strings: ISO 8601 in UTC ending in `Z`
(SQLite hands back naive timestamps, which once reached the REST page as they came).
"""

from __future__ import annotations

import re

import httpx
import pytest

from backend.asgi import application
from tests.support.graphql import GraphQLHTTP
from tests.support.rest import bearer, parse_sse
from tests.support.sockets import Socket, ws_path
from tests.support.turns import turn_cleanup  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")

MESSAGES = """
query($id: ID!) {
  messages(conversationId: $id, last: 10) { nodes { id createdAt updatedAt } }
}
"""


def stamps(message: dict) -> tuple[str, str]:
    return message["created_at"], message["updated_at"]


async def test_every_surface_writes_the_same_timestamps(llm, conversation, token):
    llm.reply_text(["Same ", "time."])
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        base = f"/api/v1/conversations/{conversation.pk}"
        stream = await client.post(
            f"{base}/messages/",
            json={"content": "What time is it?"},
            headers={**bearer(token), "Accept": "text/event-stream"},
        )
        latest = {}  # each message as the stream last showed it
        for event in parse_sse(stream.text):
            if "message" in event["data"]:
                latest[event["data"]["message"]["id"]] = event["data"]["message"]
        human, ai = latest.values()
        assert (human["role"], ai["role"]) == ("human", "ai")

        page = (await client.get(f"{base}/messages/", headers=bearer(token))).json()["results"]
        detail = (await client.get(f"{base}/messages/{ai['id']}/", headers=bearer(token))).json()
        graph = await GraphQLHTTP(client).data(MESSAGES, {"id": str(conversation.pk)}, token=token)

    socket = Socket(ws_path(conversation.pk), token)
    await socket.connect()
    await socket.send({"type": "resume", "after_id": 0})
    resumed = [(await socket.until("message.completed"))["message"] for _ in range(2)]
    await socket.close()

    nodes = {int(node["id"]): node for node in graph["messages"]["nodes"]}
    for sse_message in (human, ai):
        expected = stamps(sse_message)
        assert all(ISO_Z.match(value) for value in expected), expected
        by_id = {message["id"]: message for message in page}
        assert stamps(by_id[sse_message["id"]]) == expected, "REST history page"
        assert stamps(next(m for m in resumed if m["id"] == sse_message["id"])) == expected
        node = nodes[sse_message["id"]]
        assert (node["createdAt"], node["updatedAt"]) == expected, "GraphQL"
    assert stamps(detail) == stamps(ai), "REST message detail"
