"""Messages with attachments on every surface, what the model is sent for them, tool
outputs as owned files, and history pages that never touch file bytes."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from langchain_core.messages import AIMessage, HumanMessage

from backend.asgi import application
from conversations import services
from conversations.files import services as file_services
from conversations.files.models import UserFile
from conversations.models import ConversationMessage
from conversations.turns import start_turn
from conversations.usage.services import record_usage
from core.errors import QuotaExceeded, ValidationFailed
from tests.support import files as samples
from tests.support.fakeopenai import ToolCall
from tests.support.graphql import GraphQLHTTP, error_codes
from tests.support.rest import assert_error, bearer, comparable
from tests.support.sockets import Socket, ws_path
from tests.support.turns import turn_cleanup  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)

SEND_GRAPHQL = """
mutation($id: ID!, $content: String, $files: [ID!]) {
  sendMessage(conversationId: $id, content: $content, attachments: $files) {
    humanMessage { id text attachments { id name contentType url } }
  }
}
"""


@pytest.fixture
async def rest(token):
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=bearer(token)
    ) as client:
        yield client


@pytest.fixture
def assistant_conversation(user, assistant):
    return services.create_conversation(user=user, agent=assistant, title="Tools")


def messages_url(conversation) -> str:
    return f"/api/v1/conversations/{conversation.pk}/messages/"


@sync_to_async
def make_file(user, data: bytes, name: str) -> UserFile:
    return file_services.create_file(user=user, data=data, name=name)


@sync_to_async
def stored_bytes(file: UserFile) -> bytes:
    with default_storage.open(file.storage_name, "rb") as stored:
        return stored.read()


def user_content(request) -> list:
    """The last user message's content blocks of a chat-completions request."""
    message = [m for m in request.messages if m["role"] == "user"][-1]
    return message["content"]


async def test_rest_send_with_image_markdown_and_pdf_reaches_the_model(
    rest, llm, user, conversation
):
    image = await make_file(user, samples.png(32, 16), "chart.png")
    notes = await make_file(user, b"# Plan\n\n- ship files\n", "plan.md")
    pdf = await make_file(user, samples.pdf_with_text("Quarterly revenue rose"), "q3.pdf")
    llm.reply_text(["I see them."])

    response = await rest.post(
        messages_url(conversation),
        json={"content": "What is in these?", "attachments": [image.pk, notes.pk, pdf.pk]},
    )

    assert response.status_code == 201, response.text
    human = response.json()["human_message"]
    assert human["text"] == "What is in these?"
    assert [a["id"] for a in human["attachments"]] == [image.pk, notes.pk, pdf.pk]
    assert human["attachments"][0]["content_type"] == "image/png"
    assert human["attachments"][0]["url"].startswith("/api/v1/files/signed/")
    # The row references the files; it holds no bytes.
    row = await ConversationMessage.objects.aget(pk=human["id"])
    blocks = row.content["_value"]["content"]
    assert [b["type"] for b in blocks] == ["text", "image", "file", "file"]
    assert blocks[1]["confab_file"]["id"] == image.pk and "base64" not in json.dumps(blocks)

    # The model got the image's bytes and the files' text.
    sent = user_content(llm.requests[0])
    kinds = [part["type"] for part in sent]
    assert kinds == ["text", "image_url", "text", "text"], sent
    data_url = sent[1]["image_url"]["url"]
    assert (
        data_url == "data:image/png;base64," + base64.b64encode(await stored_bytes(image)).decode()
    )
    assert "- ship files" in sent[2]["text"] and 'name="plan.md"' in sent[2]["text"]
    assert "Quarterly revenue rose" in sent[3]["text"]


async def test_text_is_bounded_for_the_model(rest, llm, user, conversation, settings):
    settings.CONFAB_FILE_TEXT_MAX_CHARS = 50
    big = await make_file(user, ("row,value\n" * 100).encode(), "big.csv")
    llm.reply_text(["ok"])
    response = await rest.post(messages_url(conversation), json={"attachments": [big.pk]})
    assert response.status_code == 201, response.text
    (part,) = user_content(llm.requests[0])
    assert "[… cut: the file has 1000 characters]" in part["text"]
    assert len(part["text"]) < 200


async def test_someone_elses_file_is_not_found_and_nothing_is_stored(
    rest, llm, other_user, conversation, token
):
    theirs = await make_file(other_user, samples.png(), "theirs.png")
    body = {"content": "steal", "attachments": [theirs.pk]}
    stolen = await rest.post(messages_url(conversation), json=body)
    missing = await rest.post(messages_url(conversation), json={**body, "attachments": [2**40]})
    assert_error(stolen, 404, "NOT_FOUND")
    assert comparable(stolen) == comparable(missing)

    graphql = GraphQLHTTP(rest)
    variables = {"id": str(conversation.pk), "content": "steal", "files": [str(theirs.pk)]}
    answer = await graphql.execute(SEND_GRAPHQL, variables, token=token)
    assert error_codes(answer) == ["NOT_FOUND"]

    socket = Socket(ws_path(conversation.pk), token)
    await socket.connect()
    await socket.send({"type": "message", "content": "steal", "attachments": [theirs.pk]})
    error = await socket.until("error")
    assert error["code"] == "NOT_FOUND"
    await socket.close()

    assert not await ConversationMessage.objects.filter(conversation=conversation).aexists()
    assert llm.requests == []


async def test_attachment_limits_and_blank_content(rest, llm, user, conversation, settings):
    settings.CONFAB_FILES_PER_MESSAGE = 2
    files = [await make_file(user, f"{i}".encode(), f"{i}.txt") for i in range(3)]
    too_many = await rest.post(
        messages_url(conversation), json={"content": "x", "attachments": [f.pk for f in files]}
    )
    body = assert_error(too_many, 400, "VALIDATION_ERROR")
    assert body["fields"]["attachments"][0]["code"] == "too_many"
    blank = await rest.post(messages_url(conversation), json={"content": ""})
    assert assert_error(blank, 400, "VALIDATION_ERROR")["fields"]["content"][0]["code"] == "blank"
    llm.reply_text(["ok"])
    only_files = await rest.post(messages_url(conversation), json={"attachments": [files[0].pk]})
    assert only_files.status_code == 201, only_files.text
    assert only_files.json()["human_message"]["text"] == ""


async def test_graphql_send_with_attachments(rest, llm, user, conversation, token):
    image = await make_file(user, samples.png(), "p.png")
    llm.reply_text(["ok"])
    graphql = GraphQLHTTP(rest)
    variables = {"id": str(conversation.pk), "content": "look", "files": [str(image.pk)]}
    data = await graphql.data(SEND_GRAPHQL, variables, token=token)
    (attachment,) = data["sendMessage"]["humanMessage"]["attachments"]
    assert attachment["id"] == str(image.pk) and attachment["contentType"] == "image/png"


async def test_websocket_images_base64_are_stored_as_files(llm, user, conversation, token):
    png = samples.png(20, 10)
    llm.reply_text(["A red box."])
    socket = Socket(ws_path(conversation.pk), token)
    await socket.connect()
    await socket.send(
        {
            "type": "message",
            "content": "what is it?",
            "images__base64": ["data:image/png;base64," + base64.b64encode(png).decode()],
        }
    )
    human = (await socket.until("message.created", role="human"))["message"]
    await socket.until("message.completed", role="ai")
    await socket.close()

    (attachment,) = human["attachments"]
    file = await UserFile.objects.aget(pk=attachment["id"])
    assert file.user_id == user.pk and file.content_type == "image/png"
    row = await ConversationMessage.objects.aget(pk=human["id"])
    assert base64.b64encode(png).decode()[:40] not in json.dumps(row.content)
    sent = user_content(llm.requests[0])
    assert sent[1]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_a_repeated_frame_with_base64_images_stores_them_once(llm, user, conversation, token):
    image = "data:image/png;base64," + base64.b64encode(samples.png(20, 10)).decode()
    frame = {
        "type": "message",
        "content": "x",
        "client_message_id": "c-1",
        "images__base64": [image],
    }
    llm.reply_text(["ok"])
    socket = Socket(ws_path(conversation.pk), token)
    await socket.connect()
    await socket.send(frame)
    await socket.until("message.completed", role="ai")
    await socket.send(frame)
    repeated = await socket.until("message.completed", role="human")
    await socket.close()
    assert len(repeated["message"]["attachments"]) == 1
    assert await UserFile.objects.filter(user=user).acount() == 1
    assert await ConversationMessage.objects.filter(conversation=conversation).acount() == 2


async def test_websocket_bad_base64_is_a_field_error(llm, conversation, token):
    socket = Socket(ws_path(conversation.pk), token)
    await socket.connect()
    await socket.send({"type": "message", "content": "x", "images__base64": ["%%%not base64"]})
    error = await socket.until("error")
    await socket.close()
    assert error["code"] == "VALIDATION_ERROR" and "images__base64.0" in error["fields"]


def stored_names() -> set[str]:
    return set(default_storage.listdir("files")[1]) if default_storage.exists("files") else set()


async def test_a_refused_turn_leaves_none_of_its_images(llm, user, conversation, settings):
    image = "data:image/png;base64," + base64.b64encode(samples.png(20, 10)).decode()
    before = await sync_to_async(stored_names)()

    # The second image is refused after the first was stored: neither stays.
    with pytest.raises(ValidationFailed) as bad:
        await start_turn(conversation=conversation, content="x", images_base64=[image, "%%%"])
    assert "images__base64.1" in bad.value.as_dict()["fields"]

    # The quota refuses the turn after its images were stored: they go too.
    settings.CONFAB_QUOTA_TOKENS_PER_DAY = 1_000
    await sync_to_async(record_usage)(
        user_id=user.pk,
        conversation_id=None,
        message_id=None,
        model="m",
        kind="turn",
        input_tokens=1_000,
        output_tokens=0,
        cost=Decimal("0"),
    )
    with pytest.raises(QuotaExceeded):
        await start_turn(conversation=conversation, content="x", images_base64=[image])

    assert await UserFile.objects.filter(user=user).acount() == 0
    assert await sync_to_async(stored_names)() == before
    assert await ConversationMessage.objects.filter(conversation=conversation).acount() == 0
    assert llm.requests == []


@sync_to_async
def origin_row_with_image(conversation) -> ConversationMessage:
    """A human message as the origin stored it: a base64 data URL in an image_url block."""
    data_url = "data:image/png;base64," + base64.b64encode(samples.png(8, 8)).decode()
    message = HumanMessage(
        content=[
            {"type": "text", "text": "origin photo"},
            {"type": "image_url", "image_url": {"url": data_url, "detail": "auto"}},
        ]
    )
    services.append_message(conversation=conversation, message=message)
    return services.append_message(conversation=conversation, message=AIMessage("nice"))


async def test_origin_rows_with_base64_images_load_show_and_reach_the_model(
    rest, llm, conversation
):
    await origin_row_with_image(conversation)
    page = (await rest.get(messages_url(conversation))).json()["results"]
    shown = page[0]["content"]["_value"]["content"][1]
    assert shown["image_url"]["url"].startswith("data:image/png;base64,")
    assert page[0]["attachments"] == []

    llm.reply_text(["still here"])
    response = await rest.post(messages_url(conversation), json={"content": "and now?"})
    assert response.status_code == 201, response.text
    first_user = next(m for m in llm.requests[0].messages if m["role"] == "user")
    assert first_user["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_history_pages_read_no_file_rows_and_no_bytes(rest, llm, user, conversation):
    llm.reply_text(["plain"])
    await rest.post(messages_url(conversation), json={"content": "plain"})

    @sync_to_async
    def page_queries() -> int:
        from rest_framework.test import APIClient

        client = APIClient()
        client.force_authenticate(user)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(messages_url(conversation)).status_code == 200
        return len(queries)

    without = await page_queries()
    image = await make_file(user, samples.png(), "p.png")
    llm.reply_text(["seen"])
    await rest.post(messages_url(conversation), json={"content": "img", "attachments": [image.pk]})
    # The bytes are gone from storage: a page that read them would fail.
    await sync_to_async(default_storage.delete)(image.storage_name)

    with_files = await page_queries()
    page = (await rest.get(messages_url(conversation))).json()["results"]
    assert [a["id"] for a in page[2]["attachments"]] == [image.pk]
    assert with_files == without


async def test_tool_output_files_are_owned_and_never_public(
    rest, llm, user, other_user, assistant_conversation, other_token
):
    llm.reply_tool_calls(
        [ToolCall("bar_chart", {"title": "Week", "labels": ["a"], "values": [2]}, id="c1")]
    )
    llm.reply_text(["Here."])
    response = await rest.post(messages_url(assistant_conversation), json={"content": "chart"})
    assert response.status_code == 201, response.text
    page = (await rest.get(messages_url(assistant_conversation))).json()["results"]
    tool = next(m for m in page if m["role"] == "tool")
    (chart,) = tool["attachments"]
    file = await UserFile.objects.aget(pk=chart["id"])
    assert file.user_id == user.pk and chart["content_type"] == "image/svg+xml"

    # The owner and a signed URL get the bytes; nobody else, and no media path.
    owner = await rest.get(f"/api/v1/files/{file.pk}/content/")
    assert owner.status_code == 200 and owner.content.startswith(b"<svg")
    assert "sandbox" in owner.headers["Content-Security-Policy"]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://testserver"
    ) as anonymous:
        assert (await anonymous.get(chart["url"])).content == owner.content
        mallory = await anonymous.get(
            f"/api/v1/files/{file.pk}/content/", headers=bearer(other_token)
        )
        assert mallory.status_code == 404
        assert (await anonymous.get(f"/media/{file.storage_name}")).status_code == 404
    assert not (Path(settings.MEDIA_ROOT) / "tool-outputs").exists() or not any(
        (Path(settings.MEDIA_ROOT) / "tool-outputs").rglob(f"{file.sha256}*")
    )
