"""`/api/v1/conversations/` and `/api/v1/agents/` through DRF's APIClient."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.models import Agent, Conversation
from conversations.payloads import conversation_payload, message_payload
from tests.support.rest import assert_error

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/conversations/"


def detail_url(conversation: Conversation) -> str:
    return f"{LIST_URL}{conversation.pk}/"


@pytest.fixture
def topic_agent(db) -> Agent:
    """An agent with a required variable (no default)."""
    return Agent.objects.create(
        slug="topic",
        name="Topic",
        system_prompt_template="Talk about {topic} in {tone}.",
        context_schema={"tone": {"default": "a calm tone", "description": "How to talk."}},
    )


# --- list -------------------------------------------------------------------


def test_list_newest_activity_first_with_last_message(api, user, plain_agent):
    older = services.create_conversation(user=user, agent=plain_agent, title="older")
    newer = services.create_conversation(user=user, agent=plain_agent, title="newer")
    message = services.append_message(conversation=older, message=HumanMessage(content="hi"))

    body = api.get(LIST_URL).json()

    assert [c["title"] for c in body["results"]] == ["older", "newer"]  # older has new activity
    assert body["has_more"] is False and body["next_cursor"] is None
    first = body["results"][0]
    older.refresh_from_db()
    assert first["last_message"] == message_payload(message)
    assert {k: v for k, v in first.items() if k != "last_message"} == conversation_payload(older)
    assert body["results"][1]["last_message"] is None
    assert body["results"][1]["id"] == newer.pk


def test_list_pages_with_cursor(api, user, plain_agent):
    created = [
        services.create_conversation(user=user, agent=plain_agent, title=f"c{i}") for i in range(5)
    ]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = api.get(LIST_URL, params).json()
        pages += 1
        seen += [c["id"] for c in body["results"]]
        assert body["has_more"] is (body["next_cursor"] is not None)
        if not body["has_more"]:
            break
        cursor = body["next_cursor"]
    assert pages == 3
    assert seen == [c.pk for c in reversed(created)]


def test_list_filters(api, user, plain_agent, tutor):
    chat = services.create_conversation(user=user, agent=plain_agent, title="Grocery list")
    archived = services.create_conversation(user=user, agent=plain_agent, title="Old plans")
    services.set_archived(conversation=archived, archived=True)
    lesson = services.create_conversation(user=user, agent=tutor, title="Chinese lesson")

    def ids(**params):
        return {c["id"] for c in api.get(LIST_URL, params).json()["results"]}

    assert ids() == {chat.pk, archived.pk, lesson.pk}
    assert ids(archived="true") == {archived.pk}
    assert ids(archived="false") == {chat.pk, lesson.pk}
    assert ids(agent="language-tutor") == {lesson.pk}
    assert ids(agent="nope") == set()
    assert ids(q="GROCERY") == {chat.pk}
    assert ids(q="l", archived="false", agent="plain") == {chat.pk}


def test_list_shows_only_own_conversations(api, other_user, plain_agent):
    services.create_conversation(user=other_user, agent=plain_agent, title="secret")
    assert api.get(LIST_URL).json()["results"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "!!!"}, "cursor"),
        ({"archived": "maybe"}, "archived"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_list_bad_parameters(api, conversation, params, field):
    body = assert_error(api.get(LIST_URL, params), 400, "VALIDATION_ERROR")
    assert field in body["fields"]


# --- create -----------------------------------------------------------------


def test_create_fills_context_defaults(api, user, tutor):
    response = api.post(
        LIST_URL,
        {"agent": "language-tutor", "context": {"언어": "일본어"}, "title": "  Lesson  "},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    conversation = Conversation.objects.get(pk=body["id"])
    assert conversation.user == user
    assert body == {**conversation_payload(conversation), "last_message": None}
    assert body["title"] == "Lesson"
    assert body["context"] == {
        "언어": "일본어",
        "상황": "스타벅스에서 커피를 주문하는 상황",
        "레벨": "초급",
    }


def test_create_minimal(api, plain_agent):
    response = api.post(LIST_URL, {"agent": "plain"}, format="json")
    assert response.status_code == 201
    assert response.json()["context"] == {} and response.json()["title"] == ""


@pytest.mark.parametrize(
    ("payload", "field", "code"),
    [
        ({"agent": "nope"}, "agent", "not_found"),
        ({}, "agent", "required"),
        ({"agent": 3}, "agent", "invalid"),
        ({"agent": None}, "agent", "null"),
        (
            {"agent": "topic", "context": {"topic": "x", "mood": "y"}},
            "context.mood",
            "unknown_variable",
        ),
        ({"agent": "topic", "context": {}}, "context.topic", "missing_variable"),
        ({"agent": "topic", "context": {"topic": ["x"]}}, "context.topic", "invalid"),
        ({"agent": "topic", "context": {"topic": "x" * 2001}}, "context.topic", "too_long"),
        ({"agent": "topic", "context": ["topic"]}, "context", "invalid"),
        ({"agent": "topic", "context": "topic=x"}, "context", "invalid"),
        ({"agent": "plain", "title": 7}, "title", "invalid"),
        ({"agent": "plain", "title": "t" * 201}, "title", "max_length"),
        ({"agent": "plain", "owner": 1}, "owner", "unknown_field"),
    ],
)
def test_create_bad_input_names_the_field(api, plain_agent, topic_agent, payload, field, code):
    body = assert_error(api.post(LIST_URL, payload, format="json"), 400, "VALIDATION_ERROR")
    assert code in [error["code"] for error in body["fields"][field]], body
    assert not Conversation.objects.exists()


def test_create_with_inactive_agent_is_unknown(api, plain_agent):
    plain_agent.is_active = False
    plain_agent.save()
    body = assert_error(
        api.post(LIST_URL, {"agent": "plain"}, format="json"), 400, "VALIDATION_ERROR"
    )
    assert body["fields"]["agent"][0]["code"] == "not_found"


# --- one conversation -------------------------------------------------------


def test_retrieve(api, conversation):
    message = services.append_message(conversation=conversation, message=AIMessage(content="yo"))
    conversation.refresh_from_db()
    body = api.get(detail_url(conversation)).json()
    assert body == {**conversation_payload(conversation), "last_message": message_payload(message)}


def test_retrieve_unknown_is_404(api, conversation):
    assert_error(api.get(f"{LIST_URL}999999/"), 404, "NOT_FOUND")
    assert_error(api.get(f"{LIST_URL}99999999999999999999999/"), 404, "NOT_FOUND")
    assert_error(api.get(f"{LIST_URL}abc/"), 404, "NOT_FOUND")


def test_patch_changes_only_given_fields(api, tutor_conversation):
    url = detail_url(tutor_conversation)

    body = api.patch(url, {"title": "Renamed"}, format="json").json()
    assert body["title"] == "Renamed" and body["archived"] is False

    body = api.patch(url, {"archived": True}, format="json").json()
    assert body["archived"] is True and body["archived_at"] is not None
    assert body["title"] == "Renamed"

    body = api.patch(url, {"context": {"레벨": "고급"}, "archived": False}, format="json").json()
    assert body["context"]["레벨"] == "고급" and body["archived"] is False

    assert api.patch(url, {}, format="json").json()["title"] == "Renamed"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"archived": "yes"}, "archived"),
        ({"archived": 1}, "archived"),
        ({"archived": None}, "archived"),
        ({"title": None}, "title"),
        ({"title": False}, "title"),
        ({"context": {"unknown": "x"}}, "context.unknown"),
        ({"context": 5}, "context"),
        ({"agent": "plain"}, "agent"),
    ],
)
def test_patch_bad_input(api, tutor_conversation, payload, field):
    before = conversation_payload(tutor_conversation)
    body = assert_error(
        api.patch(detail_url(tutor_conversation), payload, format="json"), 400, "VALIDATION_ERROR"
    )
    assert field in body["fields"]
    tutor_conversation.refresh_from_db()
    assert conversation_payload(tutor_conversation) == before


def test_delete(api, conversation):
    services.append_message(conversation=conversation, message=HumanMessage(content="hi"))
    response = api.delete(detail_url(conversation))
    assert response.status_code == 204 and response.content == b""
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert_error(api.get(detail_url(conversation)), 404, "NOT_FOUND")
    assert_error(api.delete(detail_url(conversation)), 404, "NOT_FOUND")


def test_clear(api, conversation):
    for text in ("one", "two"):
        services.append_message(conversation=conversation, message=HumanMessage(content=text))

    response = api.post(f"{detail_url(conversation)}clear/")

    assert response.status_code == 200
    body = response.json()
    assert body["message_count"] == 0 and body["last_message"] is None
    assert body["id"] == conversation.pk
    assert not conversation.messages.exists()
    assert api.get(f"{detail_url(conversation)}messages/").json()["results"] == []


# --- agents -------------------------------------------------------------------


def test_agents_list(api, tutor, assistant, plain_agent):
    body = api.get("/api/v1/agents/").json()
    assert [a["slug"] for a in body["results"]] == ["assistant", "language-tutor", "plain"]
    assistant_body = body["results"][0]
    assert assistant_body["tools"] == assistant.tools
    assert assistant_body["context_variables"] == []


def test_agent_detail_has_variables_with_defaults(api, tutor, topic_agent, settings):
    settings.CONFAB_LLM_MODEL = ""
    body = api.get("/api/v1/agents/language-tutor/").json()
    assert body["slug"] == "language-tutor" and body["model"] == "gpt-4o"
    assert body["context_variables"][0] == {
        "name": "언어",
        "default": "중국어",
        "description": "The language to practise.",
        "required": False,
    }
    assert set(body) == {
        "slug",
        "name",
        "description",
        "context_variables",
        "model",
        "allowed_models",
        "tools",
    }

    topic = api.get("/api/v1/agents/topic/").json()["context_variables"]
    assert topic == [
        {"name": "topic", "default": None, "description": "", "required": True},
        {
            "name": "tone",
            "default": "a calm tone",
            "description": "How to talk.",
            "required": False,
        },
    ]


def test_unknown_or_inactive_agent_is_404(api, plain_agent):
    assert_error(api.get("/api/v1/agents/nope/"), 404, "NOT_FOUND")
    plain_agent.is_active = False
    plain_agent.save()
    assert_error(api.get("/api/v1/agents/plain/"), 404, "NOT_FOUND")
    assert "plain" not in [a["slug"] for a in api.get("/api/v1/agents/").json()["results"]]
