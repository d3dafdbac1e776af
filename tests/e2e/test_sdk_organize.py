"""Organise, find and rate through the generated Python SDK against a live server:
projects and moving conversations between them, pins, full-text search (Korean,
its filters, keyset pages) and feedback on a reply (issue 19)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from tests.support.sdk import expect, generated_sdk, sign_up
from tests.support.servers import LiveServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def sdk(tmp_path_factory) -> Iterator[SimpleNamespace]:
    with generated_sdk(tmp_path_factory.mktemp("sdk-organize")) as modules:
        yield modules


@pytest.fixture
def server(live_server_factory, seed_agents) -> LiveServer:
    # Its own cache namespace: the sign-up budget starts at zero.
    return live_server_factory(extra_env={"CONFAB_REDIS_PREFIX": f"sdk-{uuid.uuid4().hex}"})


def test_projects_pins_search_and_feedback(sdk, server, llm):
    m = sdk.models
    api = sign_up(sdk, server.url, "seo-yeon")
    other = sign_up(sdk, server.url, "min-jun")

    trips = expect(
        sdk.projects_create.sync(
            client=api,
            body=m.ProjectCreateRequest(
                name="여행", instructions="Answer in Korean.", default_agent="assistant"
            ),
        ),
        m.Project,
    )
    # A conversation created in the project starts with its default agent.
    busan = expect(
        sdk.conversations_create.sync(
            client=api, body=m.ConversationCreateRequest(title="부산 여행", project=trips.id)
        ),
        m.Conversation,
    )
    assert busan.project == trips.id and busan.agent == "assistant"
    coffee = expect(
        sdk.conversations_create.sync(
            client=api, body=m.ConversationCreateRequest(agent="assistant", title="커피")
        ),
        m.Conversation,
    )

    llm.reply_text(["해운대에 ", "가 보세요."])
    turn = expect(
        sdk.messages_send.sync(
            busan.id, client=api, body=m.MessageCreateRequest(content="부산에서 어디 갈까요?")
        ),
        m.TurnResult,
    )
    # The project's instructions reached the model.
    assert "Answer in Korean." in str(llm.requests[-1].body["messages"][0])
    llm.reply_text(["아메리카노 ", "드릴게요."])
    coffee_turn = expect(
        sdk.messages_send.sync(
            coffee.id, client=api, body=m.MessageCreateRequest(content="부산 커피 추천해 주세요")
        ),
        m.TurnResult,
    )

    # Filters by project; pinned first.
    def listed(**filters) -> list[int]:
        page = expect(sdk.conversations_list.sync(client=api, **filters), m.ConversationPage)
        return [conversation.id for conversation in page.results]

    assert listed(project=str(trips.id)) == [busan.id]
    assert listed(project="none") == [coffee.id]
    assert listed() == [coffee.id, busan.id]  # newest activity first
    pinned = expect(
        sdk.conversations_update.sync(
            busan.id, client=api, body=m.ConversationUpdateRequest(pinned=True)
        ),
        m.Conversation,
    )
    assert pinned.pinned is True
    assert listed() == [busan.id, coffee.id]
    # Move out of the project (null: none).
    moved = expect(
        sdk.conversations_update.sync(
            busan.id, client=api, body=m.ConversationUpdateRequest(project=None)
        ),
        m.Conversation,
    )
    assert moved.project is None
    assert listed(project=str(trips.id)) == []

    # Search: two Korean characters match, best first, paged by cursor; filters apply.
    found = expect(sdk.search.sync(client=api, q="부산", limit=1), m.SearchPage)
    assert (
        found.has_more
        and len(found.results) == 1
        and "<mark>부산</mark>" in (found.results[0].snippet)
    )
    rest = expect(sdk.search.sync(client=api, q="부산", cursor=found.next_cursor), m.SearchPage)
    seen = {result.message.id for result in found.results + rest.results}
    # The two questions, each once, across the two pages.
    assert seen == {turn.human_message.id, coffee_turn.human_message.id} and not rest.has_more
    ai_only = expect(sdk.search.sync(client=api, q="해운대", role="ai"), m.SearchPage)
    assert [result.message.id for result in ai_only.results] == [turn.ai_message.id]
    assert ai_only.results[0].conversation.title == "부산 여행"
    assert expect(sdk.search.sync(client=other, q="부산"), m.SearchPage).results == []
    bad = sdk.search.sync_detailed(client=api, q="  ")
    assert bad.status_code == 400 and "q" in expect(bad.parsed, m.Error).fields

    # Feedback: the user's own rating comes back with the message; others see none of it.
    rated = expect(
        sdk.messages_feedback_set.sync(
            busan.id,
            turn.ai_message.id,
            client=api,
            body=m.FeedbackRequest(rating=m.FeedbackRating.UP, comment="좋아요"),
        ),
        m.Message,
    )
    assert rated.feedback.rating is m.FeedbackRating.UP and rated.feedback.comment == "좋아요"
    page = expect(sdk.messages_list.sync(busan.id, client=api), m.MessagePage)
    assert [message.feedback.rating for message in page.results if message.feedback] == [
        m.FeedbackRating.UP
    ]
    refused = sdk.messages_feedback_set.sync_detailed(
        busan.id,
        turn.human_message.id,
        client=api,
        body=m.FeedbackRequest(rating=m.FeedbackRating.DOWN),
    )
    assert refused.status_code == 409
    assert expect(refused.parsed, m.Error).code == "FEEDBACK_NOT_ALLOWED"
    stranger = sdk.messages_feedback_set.sync_detailed(
        busan.id,
        turn.ai_message.id,
        client=other,
        body=m.FeedbackRequest(rating=m.FeedbackRating.DOWN),
    )
    assert stranger.status_code == 404
    cleared = expect(
        sdk.messages_feedback_clear.sync(busan.id, turn.ai_message.id, client=api), m.Message
    )
    assert not cleared.feedback
