"""Projects and pins over REST: CRUD owned by the user, instructions reaching the model,
moving conversations, the `project` list filter, pinned conversations first with a
keyset cursor that stays correct across the pinned/unpinned boundary."""

from __future__ import annotations

import pytest

from conversations import services
from conversations.models import Conversation
from conversations.projects import services as project_services
from tests.support.rest import assert_error, bearer

PROJECTS = "/api/v1/projects/"
CONVERSATIONS = "/api/v1/conversations/"


def titles(body: dict) -> list[str]:
    return [c["title"] for c in body["results"]]


@pytest.mark.django_db
def test_project_crud_is_owned(api, other_api, plain_agent):
    created = api.post(
        PROJECTS,
        {"name": " Thesis ", "instructions": "Answer in French.", "default_agent": "plain"},
        format="json",
    )
    assert created.status_code == 201, created.content
    project = created.json()
    assert project["name"] == "Thesis" and project["default_agent"] == "plain"
    assert set(project) == {
        "id",
        "name",
        "instructions",
        "default_agent",
        "created_at",
        "updated_at",
    }
    url = f"{PROJECTS}{project['id']}/"
    assert api.get(url).json() == project
    assert api.get(PROJECTS).json() == {
        "results": [project],
        "next_cursor": None,
        "has_more": False,
    }

    # Someone else's project is "not found", for every method; their list is empty.
    assert_error(other_api.get(url), 404, "NOT_FOUND")
    assert_error(other_api.patch(url, {"name": "x"}, format="json"), 404, "NOT_FOUND")
    assert_error(other_api.delete(url), 404, "NOT_FOUND")
    assert other_api.get(PROJECTS).json()["results"] == []

    changed = api.patch(
        url, {"instructions": "Answer in Korean.", "default_agent": None}, format="json"
    )
    assert changed.status_code == 200, changed.content
    assert changed.json()["instructions"] == "Answer in Korean."
    assert changed.json()["default_agent"] is None
    assert changed.json()["name"] == "Thesis"

    assert api.delete(url).status_code == 204
    assert_error(api.get(url), 404, "NOT_FOUND")


@pytest.mark.django_db
def test_project_bad_input_names_the_field(api):
    body = assert_error(api.post(PROJECTS, {"name": ""}, format="json"), 400, "VALIDATION_ERROR")
    assert "name" in body["fields"]
    body = assert_error(
        api.post(PROJECTS, {"name": "a", "default_agent": "nope"}, format="json"),
        400,
        "VALIDATION_ERROR",
    )
    assert "default_agent" in body["fields"]
    body = assert_error(
        api.post(PROJECTS, {"name": "a", "color": 1}, format="json"), 400, "VALIDATION_ERROR"
    )
    assert "color" in body["fields"]
    body = assert_error(api.get(PROJECTS, {"cursor": "x"}), 400, "VALIDATION_ERROR")
    assert (
        body["fields"]["cursor"][0]["message"]
        == "cursor must be a project id (a positive integer)."
    )


@pytest.mark.django_db
def test_conversations_move_between_projects_and_the_list_filters(
    api, user, other_user, plain_agent
):
    work = project_services.create_project(user=user, name="Work")
    home = project_services.create_project(user=user, name="Home")
    theirs = project_services.create_project(user=other_user, name="Theirs")
    a = services.create_conversation(user=user, agent=plain_agent, title="a")
    b = services.create_conversation(user=user, agent=plain_agent, title="b")
    services.create_conversation(user=user, agent=plain_agent, title="c")

    moved = api.patch(f"{CONVERSATIONS}{a.pk}/", {"project": work.pk}, format="json")
    assert moved.status_code == 200 and moved.json()["project"] == work.pk
    api.patch(f"{CONVERSATIONS}{b.pk}/", {"project": home.pk}, format="json")
    assert titles(api.get(CONVERSATIONS, {"project": work.pk}).json()) == ["a"]
    assert titles(api.get(CONVERSATIONS, {"project": home.pk}).json()) == ["b"]
    assert titles(api.get(CONVERSATIONS, {"project": "none"}).json()) == ["c"]
    assert_error(api.get(CONVERSATIONS, {"project": "x"}), 400, "VALIDATION_ERROR")

    # Between projects, then out of any.
    api.patch(f"{CONVERSATIONS}{a.pk}/", {"project": home.pk}, format="json")
    assert titles(api.get(CONVERSATIONS, {"project": home.pk}).json()) == ["b", "a"]
    out = api.patch(f"{CONVERSATIONS}{a.pk}/", {"project": None}, format="json")
    assert out.json()["project"] is None

    # Another user's project cannot be used, and does not say it exists.
    assert_error(
        api.patch(f"{CONVERSATIONS}{a.pk}/", {"project": theirs.pk}, format="json"),
        404,
        "NOT_FOUND",
    )
    assert_error(
        api.post(CONVERSATIONS, {"agent": "plain", "project": theirs.pk}, format="json"),
        404,
        "NOT_FOUND",
    )
    assert Conversation.objects.get(pk=a.pk).project_id is None

    # Deleting a project keeps its conversations, in no project.
    api.delete(f"{PROJECTS}{home.pk}/")
    assert Conversation.objects.get(pk=b.pk).project_id is None
    assert titles(api.get(CONVERSATIONS, {"project": "none"}).json()) == ["c", "b", "a"]


@pytest.mark.django_db
def test_create_in_a_project_uses_its_default_agent(api, user, plain_agent):
    project = project_services.create_project(user=user, name="P", default_agent="plain")
    created = api.post(CONVERSATIONS, {"project": project.pk, "title": "t"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["agent"] == "plain" and created.json()["project"] == project.pk
    bare = project_services.create_project(user=user, name="No agent")
    body = assert_error(
        api.post(CONVERSATIONS, {"project": bare.pk}, format="json"), 400, "VALIDATION_ERROR"
    )
    assert "agent" in body["fields"]


@pytest.mark.django_db
def test_pinned_conversations_come_first_and_the_cursor_pages_across(api, user, plain_agent):
    created = [
        services.create_conversation(user=user, agent=plain_agent, title=f"c{i}") for i in range(7)
    ]
    # Newest activity first is c6..c0; pin c1 and c4 (older ones).
    for conversation in (created[1], created[4]):
        response = api.patch(f"{CONVERSATIONS}{conversation.pk}/", {"pinned": True}, format="json")
        assert response.json()["pinned"] is True
    expected = ["c4", "c1", "c6", "c5", "c3", "c2", "c0"]
    assert titles(api.get(CONVERSATIONS).json()) == expected

    for size in (1, 2, 3):
        seen, cursor = [], None
        while True:
            params = {"limit": size, **({"cursor": cursor} if cursor else {})}
            body = api.get(CONVERSATIONS, params).json()
            seen += titles(body)
            cursor = body["next_cursor"]
            if not body["has_more"]:
                break
        assert seen == expected, size

    api.patch(f"{CONVERSATIONS}{created[4].pk}/", {"pinned": False}, format="json")
    assert titles(api.get(CONVERSATIONS).json()) == ["c1", "c6", "c5", "c4", "c3", "c2", "c0"]
    assert_error(
        api.patch(f"{CONVERSATIONS}{created[0].pk}/", {"pinned": "yes"}, format="json"),
        400,
        "VALIDATION_ERROR",
    )


@pytest.mark.django_db(transaction=True)
async def test_project_instructions_reach_the_model(asgi, llm, token, user, plain_agent):
    from asgiref.sync import sync_to_async

    project = await sync_to_async(project_services.create_project)(
        user=user, name="P", instructions="Always answer in haiku."
    )
    conversation = await sync_to_async(services.create_conversation)(
        user=user, agent=plain_agent, project=project.pk
    )
    url = f"{CONVERSATIONS}{conversation.pk}/messages/"
    llm.reply_text(["ok"])
    sent = await asgi.post(url, json={"content": "hi"}, headers=bearer(token))
    assert sent.status_code == 201, sent.text
    system = llm.requests[0].body["messages"][0]
    assert system["role"] == "system"
    assert system["content"].endswith("Always answer in haiku.")

    # Changed instructions apply from the next turn; out of the project, none.
    await sync_to_async(project_services.update_project)(project=project, instructions="Be brief.")
    llm.reply_text(["ok"])
    await asgi.post(url, json={"content": "again"}, headers=bearer(token))
    assert llm.requests[1].body["messages"][0]["content"].endswith("Be brief.")
    moved = await asgi.patch(
        f"{CONVERSATIONS}{conversation.pk}/", json={"project": None}, headers=bearer(token)
    )
    assert moved.status_code == 200
    llm.reply_text(["ok"])
    await asgi.post(url, json={"content": "third"}, headers=bearer(token))
    assert "Be brief." not in llm.requests[2].body["messages"][0]["content"]


@pytest.mark.django_db(transaction=True)
async def test_a_queued_turn_gets_its_projects_instructions(asgi, llm, token, user, plain_agent):
    """A message queued behind a running turn is answered with the project's instructions
    too (the queued turn loads the project like any turn)."""
    import asyncio

    from asgiref.sync import sync_to_async

    from conversations.models import Conversation
    from tests.support.live_clients import wait_idle
    from tests.support.turns import eventually

    project = await sync_to_async(project_services.create_project)(
        user=user, name="P", instructions="Always answer in haiku."
    )
    conversation = await sync_to_async(services.create_conversation)(
        user=user, agent=plain_agent, project=project.pk
    )
    url = f"{CONVERSATIONS}{conversation.pk}/messages/"
    llm.reply_text(["slow ", "reply"], chunk_delay=0.3)
    llm.reply_text(["queued reply"])
    first = asyncio.ensure_future(asgi.post(url, json={"content": "one"}, headers=bearer(token)))

    async def running() -> bool:
        return bool((await Conversation.objects.aget(pk=conversation.pk)).active_turn_id)

    await eventually(running, what="the first turn running")
    queued = await asgi.post(
        url, json={"content": "two", "on_busy": "enqueue"}, headers=bearer(token)
    )
    assert queued.status_code == 202, queued.text
    assert (await first).status_code == 201
    await eventually(lambda: len(llm.requests) == 2, what="the queued turn's model call")
    await wait_idle(conversation.pk)
    assert llm.requests[1].body["messages"][0]["content"].endswith("Always answer in haiku.")
