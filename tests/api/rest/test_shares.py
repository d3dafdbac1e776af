"""Share links over REST: create, list, revoke; the shared snapshot without a token, up
to the shared message only; its files through the share's own URLs; noindex."""

from __future__ import annotations

import time

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from conversations import services
from conversations.files import links as file_links
from conversations.files.attachments import human_message
from conversations.files.services import create_file
from conversations.shares import links
from conversations.shares.models import Share
from conversations.shares.services import MAX_SHARES_PER_CONVERSATION
from tests.support.files import png
from tests.support.rest import assert_error


def shares_url(conversation) -> str:
    return f"/api/v1/conversations/{conversation.pk}/shares/"


def chat(conversation, *texts: str) -> list:
    made = []
    for i, text in enumerate(texts):
        message = HumanMessage(text) if i % 2 == 0 else AIMessage(text)
        made.append(services.append_message(conversation=conversation, message=message))
    return made


def test_create_list_and_the_documented_shape(api, conversation):
    *_, last = chat(conversation, "hello", "hi there")
    response = api.post(shares_url(conversation))
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "conversation", "token", "url", "up_to_message_id", "created_at"}
    assert body["up_to_message_id"] == last.pk
    assert body["url"] == f"http://testserver/s/{body['token']}"
    # 32 URL-safe characters: 192 random bits.
    assert len(body["token"]) == 32
    again = api.post(shares_url(conversation)).json()
    assert again["token"] != body["token"]
    listed = api.get(shares_url(conversation)).json()["results"]
    assert [s["id"] for s in listed] == [again["id"], body["id"]]
    assert Share.objects.get(pk=body["id"]).token == body["token"]


def test_the_snapshot_is_readable_without_a_token_and_never_grows(api, anon, conversation):
    services.append_message(conversation=conversation, message=SystemMessage("secret prompt"))
    first = chat(conversation, "question", "**answer**")
    share = api.post(shares_url(conversation)).json()
    chat(conversation, "later question", "later answer")

    response = anon.get(f"/api/v1/shared/{share['token']}/")
    assert response.status_code == 200, response.content
    assert response["X-Robots-Tag"].startswith("noindex")
    body = response.json()
    assert body["title"] == conversation.title
    assert body["agent"] == conversation.agent.name
    assert body["up_to_message_id"] == first[-1].pk
    assert [m["text"] for m in body["results"]] == ["question", "**answer**"]
    assert all(m["feedback"] is None for m in body["results"])
    assert body["has_newer"] is False and body["newer_cursor"] is None


def finished_turn(conversation, text: str, **kwargs) -> None:
    """A turn begun by the service (a send, a regenerate, an edit) and its reply stored."""
    content = None if kwargs.get("regenerate") else HumanMessage(text)
    start = services.begin_turn(conversation=conversation, content=content, **kwargs)
    services.finish_message(
        conversation_id=conversation.pk,
        turn_id=start.turn_id,
        message_id=start.ai_message.pk,
        message=AIMessage(f"answer to {text}"),
        status="complete",
        release_lock=True,
    )


def test_the_snapshot_keeps_its_branch_after_a_regenerate_an_edit_and_a_switch(
    api, anon, conversation
):
    finished_turn(conversation, "first")
    finished_turn(conversation, "second")
    share = api.post(shares_url(conversation)).json()
    shared = ["first", "answer to first", "second", "answer to second"]

    def snapshot() -> list[str]:
        response = anon.get(f"/api/v1/shared/{share['token']}/")
        assert response.status_code == 200, response.content
        return [message["text"] for message in response.json()["results"]]

    assert snapshot() == shared
    finished_turn(conversation, "second", regenerate=True)
    assert snapshot() == shared
    first = conversation.messages.get(text="first")
    finished_turn(conversation, "first, edited", edit_of=first.pk)
    assert snapshot() == shared
    # The switched-to branch ends at the regenerated reply, not the shared one.
    services.switch_branch(conversation=conversation, message_id=first.pk)
    assert snapshot() == shared


def test_a_bad_authorization_header_does_not_matter(anon, api, conversation):
    chat(conversation, "hello")
    share = api.post(shares_url(conversation)).json()
    anon.credentials(HTTP_AUTHORIZATION="Bearer not-a-real-token")
    assert anon.get(f"/api/v1/shared/{share['token']}/").status_code == 200


def test_pages_follow_newer_cursor(api, anon, conversation):
    chat(conversation, *[f"m{i}" for i in range(7)])
    share = api.post(shares_url(conversation)).json()
    seen, after = [], None
    while True:
        query = {"limit": 3} | ({"after": after} if after else {})
        page = anon.get(f"/api/v1/shared/{share['token']}/", query).json()
        seen += [m["text"] for m in page["results"]]
        if not page["has_newer"]:
            break
        after = page["newer_cursor"]
    assert seen == [f"m{i}" for i in range(7)]
    bad = anon.get(f"/api/v1/shared/{share['token']}/", {"limit": "x"})
    assert_error(bad, 400, "VALIDATION_ERROR")


def test_revoked_unknown_and_malformed_tokens_are_not_found(api, anon, conversation):
    chat(conversation, "hello")
    share = api.post(shares_url(conversation)).json()
    assert api.delete(f"{shares_url(conversation)}{share['id']}/").status_code == 204
    for token in (share["token"], "A" * 32, "short", "x" * 65):
        response = anon.get(f"/api/v1/shared/{token}/")
        assert_error(response, 404, "NOT_FOUND")
        assert response["X-Robots-Tag"].startswith("noindex")
    assert api.get(shares_url(conversation)).json()["results"] == []
    assert_error(api.delete(f"{shares_url(conversation)}{share['id']}/"), 404, "NOT_FOUND")


def test_deleting_the_conversation_ends_its_shares(api, anon, conversation):
    chat(conversation, "hello")
    share = api.post(shares_url(conversation)).json()
    assert api.delete(f"/api/v1/conversations/{conversation.pk}/").status_code == 204
    assert_error(anon.get(f"/api/v1/shared/{share['token']}/"), 404, "NOT_FOUND")


def test_nothing_to_share_and_the_limit(api, conversation):
    assert_error(api.post(shares_url(conversation)), 409, "NOTHING_TO_SHARE")
    chat(conversation, "hello")
    for _ in range(MAX_SHARES_PER_CONVERSATION):
        assert api.post(shares_url(conversation)).status_code == 201
    assert_error(api.post(shares_url(conversation)), 409, "SHARE_LIMIT_REACHED")


def test_another_users_conversation_and_share_are_not_found(api, other_api, conversation):
    chat(conversation, "hello")
    share = api.post(shares_url(conversation)).json()
    assert_error(other_api.post(shares_url(conversation)), 404, "NOT_FOUND")
    assert_error(other_api.get(shares_url(conversation)), 404, "NOT_FOUND")
    assert_error(other_api.delete(f"{shares_url(conversation)}{share['id']}/"), 404, "NOT_FOUND")
    assert Share.objects.filter(pk=share["id"]).exists()


def test_files_are_served_only_through_the_shares_own_urls(api, anon, user, conversation):
    file = create_file(user=user, data=png(), name="chart.png")
    services.append_message(
        conversation=conversation,
        message=human_message(user=user, text="look", file_ids=[file.pk]).message,
    )
    share = api.post(shares_url(conversation)).json()
    body = anon.get(f"/api/v1/shared/{share['token']}/").json()
    [attachment] = body["results"][0]["attachments"]
    url = attachment["url"]
    assert url.startswith(links.SHARED_FILE_PATH)
    # The owner's ordinary signed URL is nowhere in what a reader gets.
    assert file_links.signed_url(file.pk) not in str(body)
    served = anon.get(url)
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert served["X-Robots-Tag"].startswith("noindex")

    # Forged, altered, expired: not found.
    token = url.removeprefix(links.SHARED_FILE_PATH).rstrip("/")
    assert anon.get(f"{links.SHARED_FILE_PATH}{token[:-2]}xx/").status_code == 404
    expired = links.shared_file_url(
        share["id"], file.pk, now=time.time() - 10 * file_links.expiry(now=0)
    )
    assert anon.get(expired).status_code == 404
    # A URL signed for this share naming another user's file: not found.
    other = create_file(
        user=type(user).objects.create_user(username="zed", password="zed-password-1"),
        data=png(),
        name="theirs.png",
    )
    assert anon.get(links.shared_file_url(share["id"], other.pk)).status_code == 404

    # Revoked: the file URL dies with the share.
    api.delete(f"{shares_url(conversation)}{share['id']}/")
    assert_error(anon.get(url), 404, "NOT_FOUND")


def test_the_shared_throttle_is_per_address(api, anon, conversation, settings):
    chat(conversation, "hello")
    share = api.post(shares_url(conversation)).json()
    rates = dict(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], shared="2/min")
    settings.REST_FRAMEWORK = dict(settings.REST_FRAMEWORK, DEFAULT_THROTTLE_RATES=rates)
    path = f"/api/v1/shared/{share['token']}/"
    assert [anon.get(path).status_code for _ in range(3)] == [200, 200, 429]
