"""`exportConversation` over GraphQL: the REST export's documents as a string, bounded."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from conversations import services
from conversations.exports.imports import import_document
from tests.support.graphql import db, error_codes

pytestmark = pytest.mark.django_db(transaction=True)

EXPORT = "query($id: ID!, $format: String!) { exportConversation(id: $id, format: $format) }"


def stored_turn(conversation) -> None:
    services.append_message(conversation=conversation, message=HumanMessage("6*7?"))
    services.append_message(
        conversation=conversation,
        message=AIMessage("", tool_calls=[{"name": "calculator", "args": {"x": 1}, "id": "c1"}]),
    )
    services.append_message(
        conversation=conversation, message=ToolMessage("42", tool_call_id="c1", name="calculator")
    )


async def test_export_json_and_markdown_and_import_back(gql, token, user, conversation):
    await db(stored_turn, conversation)
    variables = {"id": str(conversation.pk), "format": "json"}
    text = (await gql.data(EXPORT, variables, token=token))["exportConversation"]
    document = json.loads(text)
    assert [m["_type"] for m in document["conversations"][0]["messages"]] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
    ]
    [copy] = await db(import_document, user=user, document=document)
    assert copy.pk != conversation.pk and copy.message_count == 3

    variables["format"] = "markdown"
    markdown = (await gql.data(EXPORT, variables, token=token))["exportConversation"]
    assert "**Tool call** `calculator` (`c1`)" in markdown and "\n42\n" in markdown


async def test_not_found_bad_format_and_too_large(gql, token, other_token, conversation, settings):
    await db(stored_turn, conversation)
    theirs = await gql.execute(
        EXPORT, {"id": str(conversation.pk), "format": "json"}, token=other_token
    )
    assert error_codes(theirs) == ["NOT_FOUND"]
    bad = await gql.execute(EXPORT, {"id": str(conversation.pk), "format": "pdf"}, token=token)
    assert error_codes(bad) == ["VALIDATION_ERROR"]
    settings.CONFAB_GRAPHQL_MAX_RESPONSE_BYTES = 600
    large = await gql.execute(EXPORT, {"id": str(conversation.pk), "format": "json"}, token=token)
    assert error_codes(large) == ["EXPORT_TOO_LARGE"]
