"""Mutations through the HTTP view: each calls one service; input errors are typed
payload errors, everything else GraphQL errors with extensions.code."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.models import Conversation, ConversationMessage
from tests.support.graphql import ERRORS, SEND, db, error_codes, wait_until_idle

pytestmark = pytest.mark.django_db(transaction=True)

CREATE = f"""
mutation($agent: String!, $context: JSON, $title: String) {{
  createConversation(agent: $agent, context: $context, title: $title) {{
    conversation {{ id title context agent {{ slug }} archived messageCount lastMessage {{ id }} }}
    {ERRORS}
  }}
}}
"""
UPDATE = f"""
mutation($id: ID!, $title: String, $context: JSON, $archived: Boolean) {{
  updateConversation(id: $id, title: $title, context: $context, archived: $archived) {{
    conversation {{ id title context archived archivedAt }}
    {ERRORS}
  }}
}}
"""


async def test_create_conversation_fills_context_defaults(gql, token, user, tutor):
    data = await gql.data(
        CREATE,
        {"agent": "language-tutor", "context": {"레벨": "중급"}, "title": "  Café  "},
        token=token,
    )
    payload = data["createConversation"]
    assert payload["errors"] == []
    conversation = payload["conversation"]
    assert conversation["title"] == "Café"
    assert conversation["agent"] == {"slug": "language-tutor"}
    assert conversation["context"] == {
        "언어": "중국어",
        "상황": "스타벅스에서 커피를 주문하는 상황",
        "레벨": "중급",
    }
    assert conversation["messageCount"] == 0 and conversation["lastMessage"] is None
    row = await Conversation.objects.aget(pk=conversation["id"])
    assert row.user_id == user.pk


@pytest.mark.parametrize(
    ("variables", "errors"),
    [
        (
            {"agent": "nobody"},
            [{"field": "agent", "code": "not_found", "message": "Unknown agent 'nobody'."}],
        ),
        (
            {"agent": "language-tutor", "context": {"planet": "Mars"}},
            [
                {
                    "field": "context.planet",
                    "code": "unknown_variable",
                    "message": "Unknown variable 'planet'.",
                }
            ],
        ),
        (
            {"agent": "language-tutor", "context": ["not", "an", "object"]},
            [{"field": "context", "code": "invalid", "message": "context must be a JSON object."}],
        ),
        (
            {"agent": "language-tutor", "title": "x" * 201},
            [
                {
                    "field": "title",
                    "code": "too_long",
                    "message": "title is longer than 200 characters.",
                }
            ],
        ),
    ],
)
async def test_create_conversation_input_errors(gql, token, tutor, variables, errors):
    data = await gql.data(CREATE, variables, token=token)
    assert data["createConversation"] == {"conversation": None, "errors": errors}
    assert await Conversation.objects.acount() == 0


async def test_inactive_agent_is_an_input_error(gql, token, plain_agent):
    plain_agent.is_active = False
    await plain_agent.asave()
    data = await gql.data(CREATE, {"agent": "plain"}, token=token)
    assert data["createConversation"]["errors"][0]["field"] == "agent"


async def test_update_changes_only_what_is_given(gql, token, tutor_conversation):
    data = await gql.data(UPDATE, {"id": tutor_conversation.pk, "title": "Renamed"}, token=token)
    payload = data["updateConversation"]
    assert payload["errors"] == []
    assert payload["conversation"]["title"] == "Renamed"
    assert payload["conversation"]["context"] == tutor_conversation.context
    assert payload["conversation"]["archived"] is False

    data = await gql.data(
        UPDATE, {"id": tutor_conversation.pk, "context": {"언어": "스페인어"}}, token=token
    )
    assert data["updateConversation"]["conversation"]["context"]["언어"] == "스페인어"
    assert data["updateConversation"]["conversation"]["title"] == "Renamed"

    data = await gql.data(UPDATE, {"id": tutor_conversation.pk, "archived": True}, token=token)
    conversation = data["updateConversation"]["conversation"]
    assert conversation["archived"] is True and conversation["archivedAt"]


async def test_update_input_errors_change_nothing(gql, token, tutor_conversation):
    data = await gql.data(
        UPDATE,
        {"id": tutor_conversation.pk, "title": "New", "context": {"bogus": "1"}},
        token=token,
    )
    assert data["updateConversation"]["conversation"] is None
    assert data["updateConversation"]["errors"][0]["field"] == "context.bogus"
    row = await Conversation.objects.aget(pk=tutor_conversation.pk)
    assert row.title == "Tutor chat"


async def test_archive_and_unarchive(gql, token, conversation):
    query = (
        "mutation($id: ID!, $archived: Boolean!) { archiveConversation(id: $id, archived: "
        "$archived) { conversation { archived archivedAt } errors { code } } }"
    )
    default = await gql.data(
        "mutation($id: ID!) { archiveConversation(id: $id) { conversation { archived } } }",
        {"id": conversation.pk},
        token=token,
    )
    assert default["archiveConversation"]["conversation"]["archived"] is True
    data = await gql.data(query, {"id": conversation.pk, "archived": False}, token=token)
    assert data["archiveConversation"] == {
        "conversation": {"archived": False, "archivedAt": None},
        "errors": [],
    }


async def test_delete_conversation(gql, token, conversation):
    await db(services.append_message, conversation=conversation, message=HumanMessage("hi"))
    data = await gql.data(
        "mutation($id: ID!) { deleteConversation(id: $id) { deletedId errors { code } } }",
        {"id": conversation.pk},
        token=token,
    )
    assert data["deleteConversation"] == {"deletedId": str(conversation.pk), "errors": []}
    assert not await Conversation.objects.filter(pk=conversation.pk).aexists()
    assert not await ConversationMessage.objects.filter(conversation_id=conversation.pk).aexists()
    again = await gql.execute(
        "mutation($id: ID!) { deleteConversation(id: $id) { deletedId } }",
        {"id": conversation.pk},
        token=token,
    )
    assert error_codes(again) == ["NOT_FOUND"]


async def test_clear_conversation(gql, token, conversation):
    await db(services.append_message, conversation=conversation, message=HumanMessage("hi"))
    await db(services.append_message, conversation=conversation, message=AIMessage("hello"))
    data = await gql.data(
        "mutation($id: ID!) { clearConversation(id: $id) { deletedMessageCount "
        "conversation { id messageCount lastMessageAt lastMessage { id } } errors { code } } }",
        {"id": conversation.pk},
        token=token,
    )
    assert data["clearConversation"] == {
        "deletedMessageCount": 2,
        "conversation": {
            "id": str(conversation.pk),
            "messageCount": 0,
            "lastMessageAt": None,
            "lastMessage": None,
        },
        "errors": [],
    }
    assert await ConversationMessage.objects.filter(conversation_id=conversation.pk).acount() == 0


async def test_send_message_returns_at_once_and_the_turn_runs_on(gql, token, conversation, llm):
    llm.reply_text(["Hel", "lo"], usage=(5, 2), chunk_delay=0.2)
    data = await gql.data(
        SEND, {"id": conversation.pk, "content": "Hi there", "clientMessageId": "c-1"}, token=token
    )
    payload = data["sendMessage"]
    assert payload["errors"] == []
    human, ai = payload["humanMessage"], payload["aiMessage"]
    assert human["role"] == "HUMAN" and human["text"] == "Hi there"
    assert human["status"] == "COMPLETE" and human["clientMessageId"] == "c-1"
    assert human["conversationId"] == str(conversation.pk)
    # Returned before the model answered: the placeholder is still streaming.
    assert ai["role"] == "AI" and ai["status"] == "STREAMING" and ai["text"] == ""
    assert ai["turnId"] == human["turnId"]

    await wait_until_idle(conversation.pk)
    row = await ConversationMessage.objects.aget(pk=ai["id"])
    assert row.status == "complete" and row.text == "Hello"
    assert row.usage == {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}

    # The same client message id again: the same turn, no new one.
    again = await gql.data(
        SEND, {"id": conversation.pk, "content": "Hi there", "clientMessageId": "c-1"}, token=token
    )
    assert again["sendMessage"]["humanMessage"]["id"] == human["id"]
    assert again["sendMessage"]["aiMessage"]["id"] == ai["id"]
    assert again["sendMessage"]["aiMessage"]["status"] == "COMPLETE"
    assert await ConversationMessage.objects.filter(conversation_id=conversation.pk).acount() == 2


@pytest.mark.parametrize(
    ("variables", "field", "code"),
    [
        ({"content": "   "}, "content", "blank"),
        ({"content": "x" * 40_000}, "content", "too_long"),
        ({"content": "hi", "clientMessageId": "x" * 101}, "clientMessageId", "invalid"),
    ],
)
async def test_send_message_input_errors(gql, token, conversation, variables, field, code):
    data = await gql.data(SEND, {"id": conversation.pk, **variables}, token=token)
    payload = data["sendMessage"]
    assert payload["humanMessage"] is None and payload["aiMessage"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [(field, code)]
    assert await ConversationMessage.objects.acount() == 0


async def test_second_turn_while_one_runs_is_a_conflict(gql, token, conversation, llm):
    llm.reply_text(["slow"], initial_delay=1.0)
    first = await gql.data(SEND, {"id": conversation.pk, "content": "one"}, token=token)
    assert first["sendMessage"]["errors"] == []
    body = await gql.execute(SEND, {"id": conversation.pk, "content": "two"}, token=token)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "TURN_IN_PROGRESS", "type": "conflict", "retryAfter": 2}
    assert error["path"] == ["sendMessage"]
    await wait_until_idle(conversation.pk)


async def test_cancel_turn(gql, token, conversation, llm):
    llm.reply_text(["a", "b", "c", "d", "e", "f"], chunk_delay=0.3)
    sent = await gql.data(SEND, {"id": conversation.pk, "content": "go"}, token=token)
    data = await gql.data(
        "mutation($id: ID!) { cancelTurn(conversationId: $id) { turnId errors { code } } }",
        {"id": conversation.pk},
        token=token,
    )
    assert data["cancelTurn"] == {
        "turnId": sent["sendMessage"]["aiMessage"]["turnId"],
        "errors": [],
    }
    await wait_until_idle(conversation.pk)
    row = await ConversationMessage.objects.aget(pk=sent["sendMessage"]["aiMessage"]["id"])
    assert row.status == "cancelled"

    body = await gql.execute(
        "mutation($id: ID!) { cancelTurn(conversationId: $id) { turnId } }",
        {"id": conversation.pk},
        token=token,
    )
    assert error_codes(body) == ["NO_ACTIVE_TURN"]


async def test_regenerate_keeps_the_old_reply_as_a_sibling(gql, token, conversation, llm):
    query = (
        "mutation($id: ID!) { regenerate(conversationId: $id) "
        "{ aiMessage { id status role } errors { code } } }"
    )
    body = await gql.execute(query, {"id": conversation.pk}, token=token)
    assert error_codes(body) == ["NOTHING_TO_REGENERATE"]

    llm.reply_text(["first"])
    sent = await gql.data(SEND, {"id": conversation.pk, "content": "hi"}, token=token)
    await wait_until_idle(conversation.pk)
    llm.reply_text(["second"])
    data = await gql.data(query, {"id": conversation.pk}, token=token)
    new = data["regenerate"]["aiMessage"]
    assert data["regenerate"]["errors"] == []
    assert new["status"] == "STREAMING" and new["role"] == "AI"
    assert new["id"] != sent["sendMessage"]["aiMessage"]["id"]
    await wait_until_idle(conversation.pk)
    rows = [
        (m.text, m.on_path)
        async for m in ConversationMessage.objects.filter(conversation_id=conversation.pk).order_by(
            "id"
        )
    ]
    assert rows == [("hi", True), ("first", False), ("second", True)]


async def test_turns_share_the_rest_turn_rate_limit(gql, token, conversation, llm, settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "turns": "2/hour"},
    }
    for content in ("one", "two"):
        llm.reply_text(["ok"])
        data = await gql.data(SEND, {"id": conversation.pk, "content": content}, token=token)
        assert data["sendMessage"]["errors"] == []
        await wait_until_idle(conversation.pk)
    body = await gql.execute(SEND, {"id": conversation.pk, "content": "three"}, token=token)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["type"] == "rate_limited"
    assert 0 < error["extensions"]["retryAfter"] <= 3600
    regenerate = await gql.execute(
        "mutation($id: ID!) { regenerate(conversationId: $id) { errors { code } } }",
        {"id": conversation.pk},
        token=token,
    )
    assert error_codes(regenerate) == ["RATE_LIMITED"]


async def test_the_turn_budget_is_the_rest_one(user, settings):
    """GraphQL spends the turn budget every surface spends (conversations.turn_budget)."""
    from conversations import turn_budget
    from core.errors import RateLimited

    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "turns": "1/hour"},
    }
    assert (await sync_to_async(turn_budget.spend)(user)).allowed
    with pytest.raises(RateLimited):
        await turn_budget.acheck(user)
