"""Export and import over REST: one conversation as JSON (importable) and Markdown, all of
a user's data as a streamed zip, and importing an export (new ids, nothing half-stored)."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from conversations import services
from conversations.feedback.services import set_feedback
from conversations.files.attachments import human_message
from conversations.files.services import create_file
from conversations.models import Conversation, ConversationMessage, MessageFeedback
from conversations.projects.services import create_project
from conversations.sync.models import Change
from tests.support.exports import stored_contents, without_ids
from tests.support.files import png
from tests.support.rest import assert_error

pytestmark = pytest.mark.django_db

SEED = Path(__file__).resolve().parents[2] / "fixtures" / "seed"
IMPORT_URL = "/api/v1/conversations/import/"


def body_of(response: Any) -> bytes:
    """A streamed response's body (its iterator is async, as under ASGI)."""
    assert response.streaming

    async def collect() -> bytes:
        return b"".join([part async for part in response.streaming_content])

    return async_to_sync(collect)()


def export(api, conversation_id: int, kind: str = "json") -> Any:
    return api.get(f"/api/v1/conversations/{conversation_id}/export/?format={kind}")


@pytest.fixture
def history(user, conversation):
    """A turn with an image attachment, a tool call and its result, and a rated reply."""
    image = create_file(user=user, data=png(), name="cat.png")
    services.append_message(
        conversation=conversation,
        message=human_message(
            user=user, text="What is 6*7? See the cat.", file_ids=[image.pk]
        ).message,
        client_message_id="client-1",
    )
    services.append_message(
        conversation=conversation,
        message=AIMessage(
            content="",
            tool_calls=[{"name": "calculator", "args": {"expression": "6*7"}, "id": "call_1"}],
        ),
    )
    services.append_message(
        conversation=conversation,
        message=ToolMessage(content="42", tool_call_id="call_1", name="calculator"),
    )
    reply = services.append_message(
        conversation=conversation, message=AIMessage(content="It is **42**."), model="gpt-4o"
    )
    set_feedback(user=user, message=reply, rating="up", comment="right")
    conversation.refresh_from_db()
    return conversation, image


def counts() -> tuple[int, ...]:
    return (
        Conversation.objects.count(),
        ConversationMessage.objects.count(),
        MessageFeedback.objects.count(),
        Change.objects.count(),
    )


def test_json_export_keeps_every_message_its_columns_feedback_and_files(api, history):
    conversation, image = history
    response = export(api, conversation.pk)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="conversation-{conversation.pk}.json"'
    )
    document = json.loads(body_of(response))
    assert document["format"] == "confab.export" and document["version"] == 1
    [exported] = document["conversations"]
    assert exported["id"] == conversation.pk and exported["agent"] == "plain"
    assert exported["message_count"] == 4
    stored = list(ConversationMessage.objects.filter(conversation=conversation).order_by("id"))
    assert [m["id"] for m in exported["messages"]] == [m.pk for m in stored]
    for message, row in zip(exported["messages"], stored, strict=True):
        assert {"_type": message["_type"], "_value": message["_value"]} == row.content
        assert message["role"] == row.role and message["text"] == row.text
    human, call, result, reply = exported["messages"]
    assert human["client_message_id"] == "client-1"
    assert call["_value"]["tool_calls"][0]["args"] == {"expression": "6*7"}
    assert result["_value"]["tool_call_id"] == "call_1" and result["text"] == "42"
    assert reply["feedback"]["rating"] == "up" and reply["feedback"]["comment"] == "right"
    [file] = exported["files"]
    assert file["id"] == image.pk and file["name"] == "cat.png"
    assert file["content_url"] == f"/api/v1/files/{image.pk}/content/"


def test_markdown_export_has_tool_calls_results_and_image_links(api, history):
    conversation, image = history
    response = export(api, conversation.pk, "markdown")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/markdown")
    text = body_of(response).decode()
    assert text.startswith("# Test chat\n")
    assert "### User" in text and "What is 6*7? See the cat." in text
    assert f"![cat.png](http://testserver/api/v1/files/{image.pk}/content/)" in text
    assert "**Tool call** `calculator` (`call_1`)" in text and '"expression": "6*7"' in text
    assert "### Tool result: `calculator` (call `call_1`)" in text and "\n42\n" in text
    assert "It is **42**." in text and "> Feedback: up: right" in text


def test_other_users_conversation_and_bad_format(api, other_api, history):
    conversation, _ = history
    assert_error(export(other_api, conversation.pk), 404, "NOT_FOUND")
    assert_error(export(other_api, conversation.pk, "markdown"), 404, "NOT_FOUND")
    body = assert_error(export(api, conversation.pk, "pdf"), 400, "VALIDATION_ERROR")
    assert list(body["fields"]) == ["format"]


def test_the_zip_is_streamed_and_holds_everything(api, user, other_user, history, plain_agent):
    conversation, image = history
    second = services.create_conversation(user=user, agent=plain_agent, title="Second")
    services.append_message(conversation=second, message=HumanMessage("another"))
    project = create_project(user=user, name="Work")
    theirs = services.create_conversation(user=other_user, agent=plain_agent, title="Theirs")

    response = api.get("/api/v1/export/")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="confab-export-')
    archive = zipfile.ZipFile(io.BytesIO(body_of(response)))
    assert archive.testzip() is None
    names = set(archive.namelist())
    root = "confab-export/"
    for pk in (conversation.pk, second.pk):
        assert f"{root}conversations/{pk}.json" in names
        assert f"{root}conversations/{pk}.md" in names
    assert f"{root}conversations/{theirs.pk}.json" not in names
    single = json.loads(archive.read(f"{root}conversations/{conversation.pk}.json"))
    via_route = json.loads(body_of(export(api, conversation.pk)))
    for document in (single, via_route):
        document.pop("exported_at")
    assert single == via_route
    assert json.loads(archive.read(f"{root}projects.json"))[0]["id"] == project.pk
    [rating] = json.loads(archive.read(f"{root}feedback.json"))
    assert rating["conversation"] == conversation.pk and rating["rating"] == "up"
    [listed] = json.loads(archive.read(f"{root}files.json"))
    assert archive.read(root + listed["path"]) == image_bytes(image)
    markdown = archive.read(f"{root}conversations/{conversation.pk}.md").decode()
    assert f"![cat.png](../{listed['path']})" in markdown


def image_bytes(image) -> bytes:
    from django.core.files.storage import default_storage

    with default_storage.open(image.storage_name, "rb") as stored:
        return stored.read()


def test_import_round_trip_new_ids_same_contents(api, history):
    conversation, _ = history
    original = json.loads(body_of(export(api, conversation.pk)))
    before = Change.objects.count()
    response = api.post(IMPORT_URL, original, format="json")
    assert response.status_code == 201, response.content
    [created] = response.json()["conversations"]
    assert created["id"] != conversation.pk and created["message_count"] == 4
    assert created["last_message"]["text"] == "It is **42**."
    # The user's other devices learn of it through the changes feed: the conversation
    # and each message.
    assert Change.objects.count() - before == 5

    again = json.loads(body_of(export(api, created["id"])))
    assert without_ids(again) == without_ids(original)
    assert stored_contents(created["id"]) == stored_contents(conversation.pk)
    new_ids = {m["id"] for m in again["conversations"][0]["messages"]}
    assert not new_ids & {m["id"] for m in original["conversations"][0]["messages"]}


def seed_row(name: str) -> dict[str, Any]:
    return json.loads((SEED / name).read_text(encoding="utf-8"))


def test_origin_rows_import_as_they_are(api, plain_agent):
    rows = [seed_row("human_message.json"), seed_row("ai_message.json")]
    document = {"conversations": [{"agent": "plain", "title": "From the origin", "messages": rows}]}
    response = api.post(IMPORT_URL, document, format="json")
    assert response.status_code == 201, response.content
    [created] = response.json()["conversations"]
    stored = list(ConversationMessage.objects.filter(conversation_id=created["id"]).order_by("id"))
    assert [m.content for m in stored] == rows
    assert [m.role for m in stored] == ["human", "ai"]
    assert stored[0].text == "hello" and stored[1].text == rows[1]["_value"]["content"]
    assert stored[1].usage == {"input_tokens": 139, "output_tokens": 14, "total_tokens": 153}
    page = api.get(f"/api/v1/conversations/{created['id']}/messages/").json()["results"]
    assert [m["content"] for m in page] == rows


def valid_document(user, other_user) -> dict[str, Any]:
    rows = [seed_row("human_message.json"), seed_row("ai_message.json")]
    return {
        "format": "confab.export",
        "version": 1,
        "conversations": [
            {"agent": "plain", "title": "ok", "messages": [copy.deepcopy(r) for r in rows]},
            {"agent": "plain", "title": "second", "messages": [copy.deepcopy(r) for r in rows * 2]},
        ],
    }


def _set(document: dict[str, Any], path: list[Any], value: Any) -> None:
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


BAD = [
    # (where in the document, the value put there, the path the 400 names)
    (
        ["conversations", 1, "messages", 3, "_value", "content"],
        5,
        "conversations[1].messages[3]._value.content",
    ),
    (
        ["conversations", 1, "messages", 2, "_type"],
        "os.system",
        "conversations[1].messages[2]._type",
    ),
    (
        ["conversations", 1, "messages", 1, "feedback"],
        {"rating": "meh"},
        "conversations[1].messages[1].feedback.rating",
    ),
    (
        ["conversations", 1, "messages", 0, "feedback"],
        {"rating": "up"},
        "conversations[1].messages[0].feedback",
    ),
    (
        ["conversations", 1, "messages", 2, "client_message_id"],
        "same",
        "conversations[1].messages[3].client_message_id",
    ),
    (["conversations", 1, "agent"], "nobody", "conversations[1].agent"),
    (["conversations", 1, "context"], {"x": 1}, "conversations[1].context.x"),
    (
        ["conversations", 1, "messages", 0, "created_at"],
        "yesterday",
        "conversations[1].messages[0].created_at",
    ),
    (["conversations", 1, "messages", 0, "colour"], "red", "conversations[1].messages[0].colour"),
    (["conversations", 1, "project"], 2**40, "conversations[1].project"),
    (["version"], 2, "version"),
    (["conversations"], [], "conversations"),
    (["conversations", 1, "messages"], 5, "conversations[1].messages"),
    (["conversations", 1, "messages", 0, "status"], [], "conversations[1].messages[0].status"),
]


@pytest.mark.parametrize(("where", "value", "path"), BAD)
def test_a_bad_document_is_400_with_the_path_and_nothing_is_stored(
    api, user, other_user, plain_agent, where, value, path
):
    document = valid_document(user, other_user)
    _set(document, where, value)
    if path.endswith("client_message_id"):
        _set(document, ["conversations", 1, "messages", 3, "client_message_id"], "same")
    before = counts()
    body = assert_error(api.post(IMPORT_URL, document, format="json"), 400, "VALIDATION_ERROR")
    assert list(body["fields"]) == [path], body
    assert path in body["detail"]
    assert counts() == before


def test_files_must_be_the_importers_own(api, other_api, user, other_user, history):
    conversation, _ = history
    document = json.loads(body_of(export(api, conversation.pk)))
    before = counts()
    # Someone else importing a document that names this user's file: not found, and
    # no signed URL or model input ever leads to it.
    body = assert_error(
        other_api.post(IMPORT_URL, document, format="json"), 400, "VALIDATION_ERROR"
    )
    path = "conversations[0].messages[0]._value.content[1].confab_file.id"
    assert list(body["fields"]) == [path]
    assert body["fields"][path][0]["code"] == "not_found"
    assert counts() == before


def test_a_file_reference_must_carry_what_reads_take_from_it(api, history):
    conversation, _ = history
    document = json.loads(body_of(export(api, conversation.pk)))
    block = document["conversations"][0]["messages"][0]["_value"]["content"][1]
    block["confab_file"] = {"id": block["confab_file"]["id"]}  # the user's own file
    before = counts()
    body = assert_error(api.post(IMPORT_URL, document, format="json"), 400, "VALIDATION_ERROR")
    assert list(body["fields"]) == [
        "conversations[0].messages[0]._value.content[1].confab_file.name"
    ]
    assert counts() == before


def test_streaming_and_queued_messages_do_not_come_back_live(api, plain_agent):
    human = seed_row("human_message.json")
    reply = {**seed_row("ai_message.json"), "status": "streaming"}
    queued = {**human, "status": "queued"}
    document = {"conversations": [{"agent": "plain", "messages": [human, reply, queued]}]}
    response = api.post(IMPORT_URL, document, format="json")
    assert response.status_code == 201, response.content
    [created] = response.json()["conversations"]
    stored = ConversationMessage.objects.filter(conversation_id=created["id"]).order_by("id")
    assert [m.status for m in stored] == ["complete", "failed", "cancelled"]
    assert stored[1].error["code"] == "interrupted"
    assert created["active_turn_id"] is None
