"""`GET /api/v1/sync/` and GraphQL `changes`: the changes feed over both surfaces."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from langchain_core.messages import HumanMessage

from conversations import services
from conversations.sync.models import Change
from conversations.sync.services import compact_changes
from tests.support.rest import assert_error
from tests.support.sync import Replica, database_state

pytestmark = pytest.mark.django_db

SYNC = "/api/v1/sync/"
CHANGES = """
query($after: String, $first: Int) {
  changes(after: $after, first: $first) {
    cursor hasMore
    changes { type id conversationId conversation { id title } message { id text } }
  }
}
"""


def sync_all(api, cursor: str, limit: int = 2) -> tuple[list[dict], str]:
    changes = []
    while True:
        response = api.get(SYNC, {"cursor": cursor, "limit": limit})
        assert response.status_code == 200, response.content
        body = response.json()
        changes += body["changes"]
        cursor = body["cursor"]
        if not body["has_more"]:
            return changes, cursor


def test_an_app_loads_then_syncs_what_changed(api, user, plain_agent):
    start = api.get(SYNC).json()
    assert start["changes"] == [] and start["has_more"] is False
    conversation = services.create_conversation(user=user, agent=plain_agent, title="t")
    services.append_message(conversation=conversation, message=HumanMessage("hi"))
    services.update_conversation(conversation=conversation, title="renamed")
    changes, cursor = sync_all(api, start["cursor"])
    replica = Replica()
    replica.apply_all(changes)
    assert replica.state() == database_state(user)
    assert replica.conversations[conversation.pk]["title"] == "renamed"
    # Nothing new: the same cursor, no changes.
    again = api.get(SYNC, {"cursor": cursor}).json()
    assert again == {"changes": [], "cursor": cursor, "has_more": False}


def test_deletes_leave_tombstones(api, user, plain_agent):
    cursor = api.get(SYNC).json()["cursor"]
    conversation = services.create_conversation(user=user, agent=plain_agent)
    conversation_id = conversation.pk
    services.delete_conversation(conversation=conversation)
    changes, _ = sync_all(api, cursor)
    assert changes == [{"type": "conversation.deleted", "id": conversation_id}]


@pytest.mark.parametrize("cursor", ["nope", "czE6LTE", "x" * 100, "czE6YWJj"])
def test_bad_cursors_are_400(api, cursor):
    body = assert_error(api.get(SYNC, {"cursor": cursor}), 400, "VALIDATION_ERROR")
    assert "cursor" in body["fields"]


def test_an_expired_cursor_is_410(api, user, plain_agent):
    cursor = api.get(SYNC).json()["cursor"]
    conversation = services.create_conversation(user=user, agent=plain_agent)
    services.update_conversation(conversation=conversation, title="x")
    Change.objects.update(created_at=timezone.now() - timedelta(days=31))
    compact_changes()
    assert_error(api.get(SYNC, {"cursor": cursor}), 410, "SYNC_CURSOR_EXPIRED")


def test_limits_are_checked(api, settings):
    settings.CONFAB_SYNC_MAX_PAGE_SIZE = 10
    assert_error(api.get(SYNC, {"limit": 11}), 400, "VALIDATION_ERROR")
    assert api.get(SYNC, {"limit": 10}).status_code == 200


def test_unauthenticated_is_401(anon):
    assert anon.get(SYNC).status_code == 401


@pytest.mark.django_db(transaction=True)
async def test_graphql_changes_is_the_same_feed(user, token, plain_agent):
    import httpx
    from asgiref.sync import sync_to_async

    from backend.asgi import application
    from tests.support.graphql import GraphQLHTTP

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        graphql = GraphQLHTTP(client)
        first = (await graphql.data(CHANGES, token=token))["changes"]
        assert first["changes"] == [] and not first["hasMore"]
        conversation = await sync_to_async(services.create_conversation)(
            user=user, agent=plain_agent, title="over graphql"
        )
        await sync_to_async(services.append_message)(
            conversation=conversation, message=HumanMessage("hello")
        )
        page = (await graphql.data(CHANGES, {"after": first["cursor"]}, token=token))["changes"]
        rest = await client.get(
            SYNC, params={"cursor": first["cursor"]}, headers={"Authorization": f"Bearer {token}"}
        )
    assert [c["type"] for c in page["changes"]] == [c["type"] for c in rest.json()["changes"]]
    assert page["cursor"] == rest.json()["cursor"]
    message = next(c["message"] for c in page["changes"] if c["type"] == "message.upserted")
    assert message["text"] == "hello"
