"""The model registry: seeded table, a conversation's model and temperature, the turn
running with them, the context window, and MODEL_CANNOT_SEE_IMAGES."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.llm.fit import IMAGE_PLACEHOLDER, fit_history, require_images_supported
from conversations.llm.registry import SEED_MODELS, LanguageModel, ModelInfo, model_info
from conversations.models import Agent, ConversationMessage
from conversations.turns import start_turn, wait_for_result
from core.errors import ModelCannotSeeImages, ValidationFailed
from tests.support.turns import turn_cleanup  # noqa: F401

turns = pytest.mark.django_db(transaction=True)

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def blind_model(**fields) -> LanguageModel:
    return LanguageModel.objects.create(
        **{
            "name": "blind-1",
            "provider": "openai",
            "context_window": 8_000,
            "max_output_tokens": 500,
            "supports_images": False,
            **fields,
        }
    )


def with_image(text: str) -> HumanMessage:
    return HumanMessage(content=[{"type": "text", "text": text}, IMAGE])


# --- the table ----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_migration_seeds_every_provider():
    names = set(LanguageModel.objects.values_list("name", flat=True))
    assert {spec["name"] for spec in SEED_MODELS} <= names
    providers = set(LanguageModel.objects.values_list("provider", flat=True))
    assert {"openai", "anthropic", "google", "ollama", "demo"} <= providers
    claude = LanguageModel.objects.get(name="claude-haiku-4-5")
    assert claude.supports_images and claude.context_window == 200_000


@pytest.mark.django_db
def test_model_info_reads_the_row_and_forcing_a_provider_overrides_it(settings):
    settings.CONFAB_LLM_PROVIDER = "auto"
    blind_model(provider="anthropic")
    assert model_info("blind-1") == ModelInfo(
        name="blind-1",
        provider="anthropic",
        context_window=8_000,
        max_output_tokens=500,
        supports_images=False,
        supports_tools=True,
    )
    unknown = model_info("not-in-the-registry")
    assert unknown.provider == "openai" and not unknown.known and unknown.supports_images
    settings.CONFAB_LLM_PROVIDER = "ollama"
    assert model_info("blind-1").provider == "ollama"


# --- choosing a model ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_conversation_chooses_an_allowed_model_and_a_temperature(conversation, seed_models):
    agent = conversation.agent
    agent.allowed_models = ["gpt-4o-mini", "claude-haiku-4-5"]
    agent.save()

    services.update_conversation(
        conversation=conversation, model="claude-haiku-4-5", temperature=0.3
    )
    conversation.refresh_from_db()
    assert (conversation.model, conversation.temperature) == ("claude-haiku-4-5", 0.3)

    with pytest.raises(ValidationFailed) as not_allowed:
        services.update_conversation(conversation=conversation, model="gpt-4o")
    assert not_allowed.value.fields["model"][0]["code"] == "not_allowed"
    with pytest.raises(ValidationFailed) as unknown:
        services.update_conversation(conversation=conversation, model="gpt-99")
    assert unknown.value.fields["model"][0]["code"] == "unknown_model"
    for bad, code in (
        (2.5, "out_of_range"),
        (-1, "out_of_range"),
        ("1", "invalid"),
        (True, "invalid"),
    ):
        with pytest.raises(ValidationFailed) as error:
            services.update_conversation(conversation=conversation, temperature=bad)
        assert error.value.fields["temperature"][0]["code"] == code

    services.update_conversation(conversation=conversation, model=None, temperature=None)
    conversation.refresh_from_db()
    assert (conversation.model, conversation.temperature) == ("", None)


@pytest.mark.django_db
def test_an_inactive_model_cannot_be_chosen(conversation, seed_models):
    LanguageModel.objects.filter(name="gpt-4o-mini").update(is_active=False)
    with pytest.raises(ValidationFailed) as error:
        services.update_conversation(conversation=conversation, model="gpt-4o-mini")
    assert error.value.fields["model"][0]["code"] == "unknown_model"


@turns
async def test_the_turn_runs_with_the_conversations_model_and_temperature(
    llm, conversation, seed_models
):
    await sync_to_async(services.update_conversation)(
        conversation=conversation, model="gpt-4o-mini", temperature=0.2
    )
    llm.reply_text(["Hi."], usage=(5, 1))
    result = await wait_for_result(
        await start_turn(conversation=conversation, content="hello"), timeout=10
    )
    (request,) = llm.requests
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["temperature"] == 0.2
    # The registry's reply bound is sent.
    assert request.body["max_completion_tokens"] == 16_384
    assert result.ai_message.model == "gpt-4o-mini"
    assert result.ai_message.usage["input_tokens"] == 5


# --- the context window -------------------------------------------------------------


def test_fit_history_keeps_what_fits_in_the_window_and_starts_with_a_human_message():
    info = ModelInfo(
        name="small",
        provider="openai",
        context_window=1_000 + 200 + 300,  # reserved + reply + room for about 300 tokens
        max_output_tokens=200,
        supports_images=True,
        supports_tools=True,
    )
    old = [HumanMessage("x" * 400), AIMessage("y" * 400)] * 3  # ~100 tokens each
    history = [*old, HumanMessage("latest question")]
    kept = fit_history(history, system_tokens=0, info=info)
    assert kept[-1].content == "latest question"
    assert isinstance(kept[0], HumanMessage)
    assert 1 < len(kept) < len(history)
    # A huge window keeps everything.
    roomy = ModelInfo(**{**info.__dict__, "context_window": 1_000_000})
    assert fit_history(history, system_tokens=0, info=roomy) == history


def test_fit_history_always_keeps_the_new_message():
    info = ModelInfo("tiny", "openai", 10, 5, True, True)
    history = [HumanMessage("old"), AIMessage("reply"), HumanMessage("z" * 10_000)]
    assert fit_history(history, system_tokens=0, info=info) == [history[-1]]


@turns
async def test_a_small_context_window_sends_fewer_messages(llm, conversation, settings):
    await sync_to_async(blind_model)(context_window=1_000 + 500 + 400, supports_images=True)
    for index in range(6):
        await sync_to_async(services.append_message)(
            conversation=conversation, message=HumanMessage(f"question {index} " + "q" * 400)
        )
        await sync_to_async(services.append_message)(
            conversation=conversation, message=AIMessage(f"answer {index} " + "a" * 400)
        )
    await sync_to_async(services.update_conversation)(conversation=conversation, model="blind-1")
    llm.reply_text(["ok"])
    await wait_for_result(await start_turn(conversation=conversation, content="now"), timeout=10)
    sent = llm.requests[0].body["messages"]
    assert sent[0]["role"] == "system" and sent[-1]["content"] == "now"
    assert sent[1]["role"] == "user"
    # 13 stored messages fit CONFAB_HISTORY_WINDOW (40), not the 400-token window.
    assert len(sent) < 1 + 13


# --- images -------------------------------------------------------------------------


def test_require_images_supported_checks_every_image_block_type():
    blind = ModelInfo("blind", "ollama", 8_000, 500, False, True)
    seeing = ModelInfo("seeing", "openai", 8_000, 500, True, True)
    for block in (
        IMAGE,
        {"type": "image", "base64": "iVBOR", "mime_type": "image/png"},
        {"type": "file", "mime_type": "image/jpeg", "url": "https://x/y.jpg"},
    ):
        with pytest.raises(ModelCannotSeeImages) as error:
            require_images_supported(blind, [{"type": "text", "text": "see"}, block])
        assert error.value.code == "MODEL_CANNOT_SEE_IMAGES" and error.value.status == 400
        require_images_supported(seeing, [block])
    require_images_supported(blind, "just text")
    require_images_supported(blind, [{"type": "text", "text": "just text"}])


@turns
async def test_an_image_for_a_model_without_images_is_refused_before_anything_is_stored(
    llm, conversation
):
    await sync_to_async(blind_model)()
    await sync_to_async(services.append_message)(
        conversation=conversation, message=with_image("What is this?")
    )
    await sync_to_async(services.update_conversation)(conversation=conversation, model="blind-1")
    before = await ConversationMessage.objects.filter(conversation=conversation).acount()

    with pytest.raises(ModelCannotSeeImages):
        await start_turn(conversation=conversation, regenerate=True)

    assert await ConversationMessage.objects.filter(conversation=conversation).acount() == before
    await conversation.arefresh_from_db()
    assert conversation.active_turn_id is None
    assert llm.requests == []


@turns
async def test_older_images_are_replaced_by_text_for_a_model_without_images(llm, conversation):
    await sync_to_async(blind_model)()
    await sync_to_async(services.append_message)(
        conversation=conversation, message=with_image("What is this?")
    )
    await sync_to_async(services.append_message)(
        conversation=conversation, message=AIMessage("A cat.")
    )
    await sync_to_async(services.update_conversation)(conversation=conversation, model="blind-1")
    llm.reply_text(["ok"])
    result = await wait_for_result(
        await start_turn(conversation=conversation, content="And now?"), timeout=10
    )
    assert result.ai_message.status == "complete"
    first = llm.requests[0].body["messages"][1]
    assert first["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "text", "text": IMAGE_PLACEHOLDER},
    ]
    # The stored row keeps its image.
    stored = await ConversationMessage.objects.filter(conversation=conversation).afirst()
    assert IMAGE in stored.content["_value"]["content"]


@turns
async def test_a_model_without_tools_is_offered_none(llm, user):
    agent = await Agent.objects.acreate(
        slug="tooly", name="Tooly", system_prompt_template="t", tools=["calculator"]
    )
    await sync_to_async(blind_model)(supports_tools=False, supports_images=True)
    conversation = await sync_to_async(services.create_conversation)(user=user, agent=agent)
    await sync_to_async(services.update_conversation)(conversation=conversation, model="blind-1")
    llm.reply_text(["no tools"])
    await wait_for_result(await start_turn(conversation=conversation, content="2+2"), timeout=10)
    assert "tools" not in llm.requests[0].body


@turns
async def test_inline_images_for_a_blind_model_store_no_file(llm, conversation):
    """The origin's `images__base64` are refused before they become files: a refused turn
    leaves no upload behind (nor spends the user's file quota)."""
    import base64

    from conversations.files.models import UserFile
    from tests.support.files import png

    await sync_to_async(blind_model)()
    await sync_to_async(services.update_conversation)(conversation=conversation, model="blind-1")
    image = base64.b64encode(png()).decode()
    with pytest.raises(ModelCannotSeeImages):
        await start_turn(conversation=conversation, content="What is this?", images_base64=[image])
    assert await UserFile.objects.acount() == 0
    assert await ConversationMessage.objects.filter(conversation=conversation).acount() == 0
    assert llm.requests == []
