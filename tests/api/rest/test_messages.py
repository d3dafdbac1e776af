"""History pages and single messages: keyset paging both ways, constant query count."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from langchain_core.messages import AIMessage, HumanMessage

from api.rest.serializers import MessageSerializer
from conversations import services
from conversations.models import Conversation, ConversationMessage, MessageStatus
from conversations.payloads import message_payload
from conversations.services.messages import build_message
from tests.support.rest import assert_error

pytestmark = pytest.mark.django_db


def add_messages(conversation: Conversation, count: int) -> list[ConversationMessage]:
    """`count` alternating human/AI messages, stored in one INSERT."""
    rows = [
        build_message(
            conversation=conversation,
            message=HumanMessage(content=f"m{i}") if i % 2 == 0 else AIMessage(content=f"m{i}"),
        )
        for i in range(count)
    ]
    rows = ConversationMessage.objects.bulk_create(rows)
    Conversation.objects.filter(pk=conversation.pk).update(message_count=count)
    return sorted(rows, key=lambda row: row.id)


def url(conversation: Conversation, suffix: str = "") -> str:
    return f"/api/v1/conversations/{conversation.pk}/messages/{suffix}"


def test_default_is_the_newest_page_oldest_first(api, conversation):
    rows = add_messages(conversation, 10)

    body = api.get(url(conversation), {"limit": 3}).json()

    assert [m["id"] for m in body["results"]] == [r.id for r in rows[-3:]]
    assert body["has_older"] is True and body["has_newer"] is False
    assert body["older_cursor"] == rows[-3].id and body["newer_cursor"] is None
    assert body["results"][0] == message_payload(ConversationMessage.objects.get(pk=rows[-3].id))


def test_walk_back_then_forward(api, conversation):
    rows = add_messages(conversation, 10)
    ids = [r.id for r in rows]

    seen: list[int] = []
    body = api.get(url(conversation), {"limit": 4}).json()
    seen = [m["id"] for m in body["results"]]
    while body["has_older"]:
        body = api.get(url(conversation), {"limit": 4, "before": body["older_cursor"]}).json()
        seen = [m["id"] for m in body["results"]] + seen
    assert seen == ids
    assert body["has_newer"] is True and body["newer_cursor"] == body["results"][-1]["id"]

    forward = [m["id"] for m in body["results"]]
    while body["has_newer"]:
        body = api.get(url(conversation), {"limit": 4, "after": body["newer_cursor"]}).json()
        forward += [m["id"] for m in body["results"]]
    assert forward == ids


def test_cursor_of_a_deleted_message_still_works(api, conversation):
    rows = add_messages(conversation, 6)
    ConversationMessage.objects.filter(pk=rows[3].id).delete()
    body = api.get(url(conversation), {"before": rows[3].id}).json()
    assert [m["id"] for m in body["results"]] == [r.id for r in rows[:3]]
    assert body["has_newer"] is True and body["has_older"] is False


def test_empty_history(api, conversation):
    assert api.get(url(conversation)).json() == {
        "results": [],
        "has_older": False,
        "has_newer": False,
        "older_cursor": None,
        "newer_cursor": None,
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"before": "abc"}, "before"),
        ({"after": "-1"}, "after"),
        ({"after": "1.0"}, "after"),
        ({"before": str(2**64)}, "before"),
        ({"before": "5", "after": "1"}, "before"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1000"}, "limit"),
        ({"limit": "true"}, "limit"),
    ],
)
def test_bad_history_parameters(api, conversation, params, field):
    add_messages(conversation, 2)
    body = assert_error(api.get(url(conversation), params), 400, "VALIDATION_ERROR")
    assert field in body["fields"]


def test_history_query_count_does_not_grow_with_the_history(api, user, plain_agent):
    small = services.create_conversation(user=user, agent=plain_agent)
    large = services.create_conversation(user=user, agent=plain_agent)
    few = add_messages(small, 5)
    rows = add_messages(large, 500)

    def queries(conversation: Conversation, **params) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = api.get(url(conversation), {"limit": 3, **params})
        assert response.status_code == 200
        return len(captured)

    queries(small)  # the token's first use this minute writes its last_used_at
    assert queries(small) == queries(large)
    assert queries(small, before=few[3].id) == queries(large, before=rows[250].id)
    assert queries(small, after=few[1].id) == queries(large, after=rows[250].id)


def test_message_detail(api, conversation):
    rows = add_messages(conversation, 3)
    response = api.get(url(conversation, f"{rows[1].id}/"))
    assert response.status_code == 200
    assert response.json() == message_payload(ConversationMessage.objects.get(pk=rows[1].id))


def test_message_of_another_conversation_is_404(api, user, plain_agent, conversation):
    elsewhere = services.create_conversation(user=user, agent=plain_agent)
    row = add_messages(elsewhere, 1)[0]
    assert_error(api.get(url(conversation, f"{row.id}/")), 404, "NOT_FOUND")
    assert_error(api.get(url(conversation, "999999/")), 404, "NOT_FOUND")


def test_message_serializer_is_the_event_payload(conversation):
    """REST's message JSON is `payloads.message_payload`, field for field."""
    human = services.append_message(
        conversation=conversation,
        message=HumanMessage(content="hi"),
        client_message_id="c-1",
    )
    ai = services.append_message(
        conversation=conversation,
        message=AIMessage(
            content="yo",
            usage_metadata={"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
        ),
        status=MessageStatus.FAILED,
        model="test-model",
    )
    ai.error = {"code": "provider_error", "message": "The model provider failed to answer."}
    ai.turn_id = uuid.uuid4()
    ai.save()
    for message in (human, ai):
        message = ConversationMessage.objects.get(pk=message.pk)
        assert MessageSerializer(message).data == message_payload(message)
    assert set(MessageSerializer().fields) == set(message_payload(ai))


@pytest.mark.parametrize("accept", ["application/json", "application/json; indent=4"])
def test_a_page_written_from_stored_json_is_the_event_payload(api, conversation, accept):
    # The history GET writes JSON columns as the database's text (history_pages.MessageRow);
    # whether orjson embeds it or DRF's encoder parses it (indent), it is the payload.
    ai = services.append_message(
        conversation=conversation,
        message=AIMessage(
            content=[{"type": "text", "text": '名前 "quoted" \\ 😀'}],
            usage_metadata={"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
            response_metadata={"big": 2**70 + 1, "nested": {"x": [1.5, None, True]}},
        ),
        status=MessageStatus.FAILED,
        model="test-model",
    )
    ai.error = {"code": "provider_error", "message": "The model provider failed."}
    ai.turn_id = uuid.uuid4()
    ai.save()
    human = services.append_message(conversation=conversation, message=HumanMessage(content="hi"))

    response = api.get(url(conversation), HTTP_ACCEPT=accept)

    assert response.status_code == 200
    expected = [message_payload(ConversationMessage.objects.get(pk=pk)) for pk in (ai.pk, human.pk)]
    assert response.json()["results"] == expected
    metadata = response.json()["results"][0]["content"]["_value"]["response_metadata"]
    assert metadata["big"] == 2**70 + 1
