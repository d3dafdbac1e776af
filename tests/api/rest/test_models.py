"""The model registry on REST and GraphQL: GET /api/v1/models/, `models`, choosing a
conversation's model and temperature, and MODEL_CANNOT_SEE_IMAGES."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from langchain_core.messages import HumanMessage

from conversations import services
from conversations.llm.registry import LanguageModel
from conversations.models import ConversationMessage
from tests.support.graphql import GraphQLHTTP
from tests.support.rest import assert_error, bearer
from tests.support.turns import turn_cleanup  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

MODEL_FIELDS = {
    "name",
    "label",
    "provider",
    "context_window",
    "max_output_tokens",
    "supports_images",
    "supports_tools",
    "input_price_per_million",
    "output_price_per_million",
}
UPDATE = """
mutation($id: ID!, $model: String, $temperature: Float) {
  updateConversation(id: $id, model: $model, temperature: $temperature) {
    conversation { id model temperature }
    errors { field code message }
  }
}
"""
MODELS = "{ models { name label provider contextWindow maxOutputTokens supportsImages "
MODELS += "supportsTools inputPricePerMillion outputPricePerMillion } }"


@pytest.fixture
async def gql(asgi):
    return GraphQLHTTP(asgi)


def url(conversation) -> str:
    return f"/api/v1/conversations/{conversation.pk}/"


async def test_models_lists_the_active_registry(asgi, token, seed_models, anon):
    await LanguageModel.objects.filter(name="gpt-4.1").aupdate(is_active=False)
    response = await asgi.get("/api/v1/models/", headers=bearer(token))
    assert response.status_code == 200
    results = response.json()["results"]
    by_name = {model["name"]: model for model in results}
    assert "gpt-4.1" not in by_name
    assert set(by_name["claude-haiku-4-5"]) == MODEL_FIELDS
    assert by_name["claude-haiku-4-5"]["provider"] == "anthropic"
    assert by_name["claude-haiku-4-5"]["input_price_per_million"] == 1.0
    assert by_name["llama3.2"]["supports_images"] is False
    assert (await asgi.get("/api/v1/models/")).status_code == 401


async def test_patch_sets_and_resets_the_model_and_temperature(
    asgi, token, conversation, seed_models
):
    response = await asgi.patch(
        url(conversation), json={"model": "gpt-4o-mini", "temperature": 0.4}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    assert (response.json()["model"], response.json()["temperature"]) == ("gpt-4o-mini", 0.4)

    response = await asgi.patch(
        url(conversation), json={"model": None, "temperature": None}, headers=bearer(token)
    )
    # Back to the agent's model (plain_agent: test-model); its temperature is not shown.
    assert (response.json()["model"], response.json()["temperature"]) == ("test-model", None)


async def test_patch_refuses_bad_models_and_temperatures(asgi, token, conversation, seed_models):
    agent = conversation.agent
    agent.allowed_models = ["gpt-4o-mini"]
    await agent.asave()
    cases = [
        ({"model": "claude-haiku-4-5"}, "model", "not_allowed"),
        ({"model": "no-such-model"}, "model", "unknown_model"),
        ({"model": 5}, "model", "invalid"),
        ({"temperature": 3}, "temperature", "max_value"),
        ({"temperature": "0.5"}, "temperature", "invalid"),
    ]
    for body, field, code in cases:
        response = await asgi.patch(url(conversation), json=body, headers=bearer(token))
        error = assert_error(response, 400, "VALIDATION_ERROR")
        assert error["fields"][field][0]["code"] == code, (body, error)
    await conversation.arefresh_from_db()
    assert (conversation.model, conversation.temperature) == ("", None)


async def test_another_users_conversation_is_not_found(
    asgi, other_token, conversation, seed_models
):
    response = await asgi.patch(
        url(conversation), json={"model": "gpt-4o-mini"}, headers=bearer(other_token)
    )
    assert_error(response, 404, "NOT_FOUND")


async def test_graphql_models_and_update_conversation(gql, token, conversation, seed_models):
    data = await gql.data(MODELS, token=token)
    names = {model["name"]: model for model in data["models"]}
    assert names["gemini-2.5-flash"]["provider"] == "google"
    assert names["gemini-2.5-flash"]["contextWindow"] == 1_048_576

    data = await gql.data(
        UPDATE, {"id": conversation.pk, "model": "gpt-4o-mini", "temperature": 1.5}, token=token
    )
    payload = data["updateConversation"]
    assert payload["errors"] == []
    assert payload["conversation"]["model"] == "gpt-4o-mini"
    assert payload["conversation"]["temperature"] == 1.5

    data = await gql.data(UPDATE, {"id": conversation.pk, "model": "gpt-99"}, token=token)
    payload = data["updateConversation"]
    assert payload["conversation"] is None
    assert payload["errors"][0]["field"] == "model"
    assert payload["errors"][0]["code"] == "unknown_model"


async def test_regenerating_an_image_message_with_a_blind_model_is_400(
    asgi, llm, token, conversation, seed_models
):
    await sync_to_async(services.append_message)(
        conversation=conversation,
        message=HumanMessage(
            content=[
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
            ]
        ),
    )
    response = await asgi.patch(
        url(conversation), json={"model": "llama3.2"}, headers=bearer(token)
    )
    assert response.status_code == 200
    before = await ConversationMessage.objects.filter(conversation=conversation).acount()

    response = await asgi.post(f"{url(conversation)}regenerate/", headers=bearer(token))

    assert_error(response, 400, "MODEL_CANNOT_SEE_IMAGES")
    assert await ConversationMessage.objects.filter(conversation=conversation).acount() == before
    assert llm.requests == []


REGENERATE = """
mutation($id: ID!) { regenerate(conversationId: $id) { errors { field code message } } }
"""


async def test_graphql_regenerate_with_a_blind_model_is_model_cannot_see_images(
    gql, llm, token, conversation, seed_models
):
    await sync_to_async(services.append_message)(
        conversation=conversation,
        message=HumanMessage(
            content=[{"type": "image", "base64": "iVBORw0K", "mime_type": "image/png"}]
        ),
    )
    await sync_to_async(services.update_conversation)(conversation=conversation, model="llama3.2")
    body = await gql.execute(REGENERATE, {"id": conversation.pk}, token=token)
    assert [error["extensions"]["code"] for error in body["errors"]] == ["MODEL_CANNOT_SEE_IMAGES"]
    assert llm.requests == []
