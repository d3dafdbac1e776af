"""Feedback on AI replies over REST and GraphQL: set, replace, clear; only finished AI
replies; in the message payload on every read (pages, detail, list, changes feed); the
admin lists it with its filters."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.models import MessageFeedback
from tests.support.rest import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def exchange(user, conversation):
    human = services.append_message(conversation=conversation, message=HumanMessage("hi"))
    ai = services.append_message(conversation=conversation, message=AIMessage("hello"))
    return conversation, human, ai


def feedback_url(conversation, message) -> str:
    return f"/api/v1/conversations/{conversation.pk}/messages/{message.pk}/feedback/"


def test_rate_replace_and_clear_an_ai_reply(api, exchange):
    conversation, _, ai = exchange
    url = feedback_url(conversation, ai)
    rated = api.put(url, {"rating": "down", "comment": " too long "}, format="json")
    assert rated.status_code == 200, rated.content
    feedback = rated.json()["feedback"]
    assert feedback["rating"] == "down" and feedback["comment"] == "too long"
    assert set(feedback) == {"rating", "comment", "updated_at"}

    base = f"/api/v1/conversations/{conversation.pk}"
    page = api.get(f"{base}/messages/").json()["results"]
    assert [m["feedback"] for m in page] == [None, feedback]
    assert api.get(f"{base}/messages/{ai.pk}/").json()["feedback"] == feedback
    listed = api.get("/api/v1/conversations/").json()["results"][0]
    assert listed["last_message"]["feedback"] == feedback

    replaced = api.put(url, {"rating": "up"}, format="json").json()["feedback"]
    assert replaced["rating"] == "up" and replaced["comment"] == ""
    assert MessageFeedback.objects.count() == 1

    cleared = api.delete(url)
    assert cleared.status_code == 200 and cleared.json()["feedback"] is None
    assert api.get(f"{base}/messages/").json()["results"][1]["feedback"] is None
    assert MessageFeedback.objects.count() == 0


def test_only_finished_ai_replies_and_only_ones_own(api, other_api, exchange):
    conversation, human, ai = exchange
    assert_error(
        api.put(feedback_url(conversation, human), {"rating": "up"}, format="json"),
        409,
        "FEEDBACK_NOT_ALLOWED",
    )
    body = assert_error(
        api.put(feedback_url(conversation, ai), {"rating": "meh"}, format="json"),
        400,
        "VALIDATION_ERROR",
    )
    assert "rating" in body["fields"]
    theirs = other_api.put(feedback_url(conversation, ai), {"rating": "up"}, format="json")
    assert_error(theirs, 404, "NOT_FOUND")
    assert_error(other_api.delete(feedback_url(conversation, ai)), 404, "NOT_FOUND")
    assert MessageFeedback.objects.count() == 0


def test_a_rating_reaches_the_changes_feed(api, exchange):
    conversation, _, ai = exchange
    cursor = api.get("/api/v1/sync/").json()["cursor"]
    api.put(feedback_url(conversation, ai), {"rating": "up"}, format="json")
    changes = api.get("/api/v1/sync/", {"cursor": cursor}).json()["changes"]
    assert [c["type"] for c in changes] == ["message.upserted"]
    assert changes[0]["message"]["feedback"]["rating"] == "up"


def test_the_admin_lists_feedback_with_filters(client, user, exchange):
    conversation, _, ai = exchange
    MessageFeedback.objects.create(message=ai, user=user, rating="down", comment="wrong")
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client.force_login(root)
    url = "/admin/conversations/messagefeedback/"
    assert b"wrong" in client.get(url).content
    assert b"wrong" in client.get(url, {"rating__exact": "down"}).content
    assert b"wrong" not in client.get(url, {"rating__exact": "up"}).content
    agent_filter = {"message__conversation__agent__id__exact": conversation.agent_id}
    assert client.get(url, agent_filter).status_code == 200
    assert b"wrong" in client.get(url, agent_filter).content
