"""Full-text search over REST (`/api/v1/search/`) on the suite's database (SQLite FTS5
or PostgreSQL's GIN index): CJK two-character queries on the seed's rows, websearch
syntax, ranking, keyset pages, filters, the user's own data only, snippets, and the
index kept by the write path."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.codec import decode_message
from conversations.models import ConversationMessage
from conversations.projects import services as project_services
from tests.support.rest import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/search/"
SEED = Path(__file__).resolve().parents[2] / "fixtures" / "seed"


def say(conversation, text: str, *, ai: bool = False) -> ConversationMessage:
    message = AIMessage(content=text) if ai else HumanMessage(content=text)
    return services.append_message(conversation=conversation, message=message)


def ids(body: dict) -> list[int]:
    return [result["message"]["id"] for result in body["results"]]


def search(api, q: str, **params) -> dict:
    response = api.get(URL, {"q": q, **params})
    assert response.status_code == 200, response.content
    return response.json()


def test_korean_and_chinese_two_character_queries_find_the_seeds_messages(
    api, user, tutor_conversation
):
    seed_human = services.append_message(
        conversation=tutor_conversation,
        message=decode_message(json.loads((SEED / "human_message.json").read_text())),
    )
    seed_ai = services.append_message(
        conversation=tutor_conversation,
        message=decode_message(json.loads((SEED / "ai_message.json").read_text())),
    )
    korean = say(tutor_conversation, "스타벅스에서 커피를 주문하고 싶어요")
    say(tutor_conversation, "오늘 날씨가 좋네요")

    chinese = search(api, "咖啡")  # inside the seed reply: ...点什么咖啡吗
    assert ids(chinese) == [seed_ai.pk]
    assert chinese["results"][0]["conversation"] == {
        "id": tutor_conversation.pk,
        "title": tutor_conversation.title,
    }
    assert "<mark>咖啡</mark>" in chinese["results"][0]["snippet"]
    assert chinese["results"][0]["message"]["content"] == seed_ai.content

    found = search(api, "커피")  # glued to its particle: 커피를
    assert ids(found) == [korean.pk]
    assert "<mark>커피</mark>를" in found["results"][0]["snippet"]
    assert ids(search(api, "주문")) == [korean.pk]
    assert ids(search(api, "커피를 주문")) == [korean.pk]
    assert ids(search(api, "hello")) == [seed_human.pk]
    assert ids(search(api, "咖茶")) == []
    assert ids(search(api, "피주")) == []  # the characters, but not in a row


def test_websearch_syntax_and_ranking(api, user, conversation):
    dense = say(conversation, "coffee coffee coffee")
    sparse = say(
        conversation,
        "A long note about many things, trains and hotels and tickets, and once coffee.",
    )
    tea = say(conversation, "green tea with milk")
    both = say(conversation, "coffee or tea, with milk please")

    assert ids(search(api, "coffee")) == [dense.pk, both.pk, sparse.pk]
    assert ids(search(api, "coffee -milk")) == [dense.pk, sparse.pk]
    assert set(ids(search(api, "coffee milk"))) == {both.pk}
    assert ids(search(api, '"with milk"')) == [tea.pk, both.pk] or ids(
        search(api, '"with milk"')
    ) == [both.pk, tea.pk]
    assert ids(search(api, '"milk with"')) == []
    assert set(ids(search(api, "trains or green"))) == {sparse.pk, tea.pk}
    assert ids(search(api, "COFFEE"))[0] == dense.pk
    assert ids(search(api, "-coffee")) == []


def test_only_the_users_own_messages(api, user, other_user, conversation, plain_agent):
    mine = say(conversation, "the secret recipe")
    theirs = services.create_conversation(user=other_user, agent=plain_agent)
    say(theirs, "the secret recipe")
    assert ids(search(api, "recipe")) == [mine.pk]


def test_keyset_pages_see_each_result_once_in_rank_order(api, user, conversation):
    for count in (1, 2, 2, 3, 1, 2, 5, 1):
        say(conversation, " ".join(["ticket"] * count + ["filler"] * 3))
    everything = ids(search(api, "ticket", limit=200))
    assert len(everything) == 8
    for size in (1, 2, 3):
        seen, cursor = [], None
        while True:
            body = search(api, "ticket", limit=size, **({"cursor": cursor} if cursor else {}))
            seen += ids(body)
            if not body["has_more"]:
                assert body["next_cursor"] is None
                break
            cursor = body["next_cursor"]
        assert seen == everything, size


def test_filters(api, user, conversation, tutor_conversation):
    project = project_services.create_project(user=user, name="P")
    services.update_conversation(conversation=tutor_conversation, project=project.pk)
    human = say(conversation, "train station")
    reply = say(conversation, "the train leaves", ai=True)
    tutor = say(tutor_conversation, "train ticket")
    old = say(conversation, "an old train")
    ConversationMessage.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=10)
    )

    assert set(ids(search(api, "train", role="ai"))) == {reply.pk}
    assert set(ids(search(api, "train", agent="language-tutor"))) == {tutor.pk}
    assert set(ids(search(api, "train", project=project.pk))) == {tutor.pk}
    assert set(ids(search(api, "train", project="none"))) == {human.pk, reply.pk, old.pk}
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert old.pk not in ids(search(api, "train", since=since))
    until = (timezone.now() - timedelta(days=5)).date().isoformat()
    assert ids(search(api, "train", until=until)) == [old.pk]


def test_snippets_escape_the_text(api, user, conversation):
    say(conversation, 'Try <script>alert("x")</script> and coffee & cake ' + "x " * 100)
    snippet = search(api, "coffee")["results"][0]["snippet"]
    assert "<script>" not in snippet
    assert "&lt;script&gt;" in snippet
    assert "<mark>coffee</mark> &amp; cake" in snippet
    assert snippet.endswith("…")


def test_the_index_follows_edits_and_deletes(api, user, conversation):
    message = say(conversation, "draft words")
    ConversationMessage.objects.filter(pk=message.pk).update(text="final answer")
    assert ids(search(api, "draft")) == []
    assert ids(search(api, "final")) == [message.pk]
    services.clear_conversation(conversation=conversation)
    assert ids(search(api, "final")) == []


def test_bad_input_is_a_400_naming_the_field(api):
    for params, field in (
        ({}, "q"),
        ({"q": " "}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "a", "cursor": "nope"}, "cursor"),
        ({"q": "a", "role": "robot"}, "role"),
        ({"q": "a", "since": "yesterday"}, "since"),
        ({"q": "a", "limit": 0}, "limit"),
        ({"q": "a", "project": "x"}, "project"),
        ({"q": "a", "agent": "bad\x00slug"}, "agent"),
    ):
        body = assert_error(api.get(URL, params), 400, "VALIDATION_ERROR")
        assert field in body["fields"], (params, body)


def test_anonymous_is_refused(anon):
    assert anon.get(URL, {"q": "a"}).status_code == 401
