"""The generated Python SDK against a live Confab server.

The client is generated from the committed `openapi.yaml` exactly as `make sdk` does
(openapi-python-client with `sdk/config.yaml`), into a temporary folder, once per
session. The tests then use nothing but that package to talk to a real uvicorn
process (PostgreSQL, Redis, the fake OpenAI server as the model): register, sign in,
create a conversation, send messages, page the history both ways, and get the typed
`Error` for bad input (400 with per-field codes, 401, 404, 409).
"""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.support.sdk import PACKAGE, PASSWORD, expect, generate_sdk, sign_up
from tests.support.servers import LiveServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> Iterator[tuple[ModuleType, str]]:
    """The generated package, imported from a temporary folder, and the generator's output."""
    folder = tmp_path_factory.mktemp("sdk")
    log = generate_sdk(folder / PACKAGE)
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE), log
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


@pytest.fixture(scope="session")
def sdk(generated) -> SimpleNamespace:
    """The generated modules by their short names: `sdk.models`, `sdk.auth_register`, …"""
    package, _ = generated
    modules: dict[str, Any] = {
        "package": package,
        "models": importlib.import_module(f"{PACKAGE}.models"),
        "types": importlib.import_module(f"{PACKAGE}.types"),
    }
    for tag in ("agents", "auth", "conversations", "messages", "export"):
        folder = Path(package.__file__).parent / "api" / tag
        for module in sorted(folder.glob("*.py")):
            if module.stem != "__init__":
                modules[module.stem] = importlib.import_module(f"{PACKAGE}.api.{tag}.{module.stem}")
    return SimpleNamespace(**modules)


@pytest.fixture
def server(live_server_factory, seed_agents) -> LiveServer:
    # Its own cache namespace: rate-limit counters (register, login) start at zero.
    return live_server_factory(extra_env={"CONFAB_REDIS_PREFIX": f"sdk-{uuid.uuid4().hex}"})


def test_generation_is_clean_and_names_are_pleasant(generated, sdk):
    _, log = generated
    assert "warning" not in log.lower(), log
    models = set(sdk.models.__all__)
    # No drf-spectacular artefacts in the public names.
    assert not [name for name in models if name.startswith("Patched") or name.endswith("Enum")]
    assert {"Error", "FieldError", "Message", "MessagePage", "TurnResult", "Context"} <= models
    assert {role.value for role in sdk.models.MessageRole} == {"system", "human", "ai", "tool"}
    # One operation module per endpoint, named by its operationId.
    assert hasattr(sdk.messages_list, "sync") and hasattr(sdk.messages_send, "asyncio")


def test_register_sign_in_converse_and_page_history(sdk, server, llm):
    m = sdk.models
    anonymous = sdk.package.Client(base_url=server.url, raise_on_unexpected_status=True)
    registered = expect(
        sdk.auth_register.sync(
            client=anonymous,
            body=m.RegisterRequest(username="ana", password=PASSWORD, email="ana@example.com"),
        ),
        m.Token,
    )
    assert registered.user.username == "ana"

    token = expect(
        sdk.auth_token_create.sync(
            client=anonymous,
            body=m.TokenCreateRequest(username="ana", password=PASSWORD, device_name="SDK test"),
        ),
        m.Token,
    )
    assert token.token != registered.token and token.expiry is not None
    api = sdk.package.AuthenticatedClient(
        base_url=server.url,
        token=token.token,
        timeout=httpx.Timeout(30),
        raise_on_unexpected_status=True,
    )
    me = expect(sdk.auth_me.sync(client=api), m.User)
    assert (me.id, me.username, me.email) == (registered.user.id, "ana", "ana@example.com")

    agents = expect(sdk.agents_list.sync(client=api), m.AgentList)
    tutor = next(agent for agent in agents.results if agent.slug == "language-tutor")
    assert {variable.name for variable in tutor.context_variables} == {"언어", "상황", "레벨"}

    conversation = expect(
        sdk.conversations_create.sync(
            client=api,
            body=m.ConversationCreateRequest(
                agent="language-tutor",
                title="Coffee order",
                context=m.Context.from_dict({"언어": "일본어", "레벨": 2}),
            ),
        ),
        m.Conversation,
    )
    assert conversation.context["언어"] == "일본어"
    assert conversation.context["레벨"] == "2"  # stored as text
    assert conversation.last_message is None and conversation.message_count == 0

    # Three turns: six messages.
    replies = [["いらっしゃい", "ませ"], ["ホットで", "すか"], ["かしこまり", "ました。"]]
    results = []
    for number, reply in enumerate(replies, start=1):
        llm.reply_text(reply, usage=(12, 4))
        sent = sdk.messages_send.sync_detailed(
            conversation.id,
            client=api,
            body=m.MessageCreateRequest(
                content=f"커피 {number}잔 주세요", client_message_id=f"m{number}"
            ),
        )
        assert sent.status_code == 201
        result = expect(sent.parsed, m.TurnResult)
        assert result.human_message.role is m.MessageRole.HUMAN
        assert result.ai_message.role is m.MessageRole.AI
        assert result.ai_message.status is m.MessageStatus.COMPLETE
        assert result.ai_message.text == "".join(reply)
        assert result.ai_message.usage.total_tokens == 16
        assert result.ai_message.error is None
        assert result.human_message.client_message_id == f"m{number}"
        results.append(result)

    # A retry with the same client_message_id is the same turn (200, nothing new).
    retried = sdk.messages_send.sync_detailed(
        conversation.id,
        client=api,
        body=m.MessageCreateRequest(content="커피 1잔 주세요", client_message_id="m1"),
    )
    assert retried.status_code == 200 and retried.headers["Idempotent-Replayed"] == "true"
    assert expect(retried.parsed, m.TurnResult).ai_message.id == results[0].ai_message.id

    all_ids = [
        message.id for result in results for message in (result.human_message, result.ai_message)
    ]

    # Newest page first, then walk back with before=older_cursor.
    page = expect(sdk.messages_list.sync(conversation.id, client=api, limit=2), m.MessagePage)
    assert (page.has_older, page.has_newer, page.newer_cursor) == (True, False, None)
    backwards = [[message.id for message in page.results]]
    while page.has_older:
        page = expect(
            sdk.messages_list.sync(conversation.id, client=api, limit=2, before=page.older_cursor),
            m.MessagePage,
        )
        backwards.append([message.id for message in page.results])
    assert page.has_newer and page.older_cursor is None
    assert backwards == [all_ids[4:6], all_ids[2:4], all_ids[0:2]]

    # And forward again from the oldest page with after=newer_cursor.
    forwards = [[message.id for message in page.results]]
    while page.has_newer:
        page = expect(
            sdk.messages_list.sync(conversation.id, client=api, limit=2, after=page.newer_cursor),
            m.MessagePage,
        )
        forwards.append([message.id for message in page.results])
    assert [message_id for ids in forwards for message_id in ids] == all_ids
    assert [message.role for message in page.results] == [m.MessageRole.HUMAN, m.MessageRole.AI]

    one = expect(sdk.messages_retrieve.sync(conversation.id, all_ids[-1], client=api), m.Message)
    assert one.text == "かしこまりました。" and one.content["_type"] == "AIMessage"

    updated = expect(
        sdk.conversations_update.sync(
            conversation.id,
            client=api,
            body=m.ConversationUpdateRequest(title="Latte", archived=True),
        ),
        m.Conversation,
    )
    assert updated.archived and updated.archived_at is not None and updated.message_count == 6
    archived = expect(sdk.conversations_list.sync(client=api, archived=True), m.ConversationPage)
    assert [item.id for item in archived.results] == [conversation.id]
    assert archived.results[0].last_message.id == all_ids[-1]
    active = expect(sdk.conversations_list.sync(client=api, archived=False), m.ConversationPage)
    assert active.results == [] and active.has_more is False

    logged_out = sdk.auth_logout.sync_detailed(client=api)
    assert logged_out.status_code == 204
    gone = expect(sdk.auth_me.sync(client=api), m.Error)
    assert gone.code == "NOT_AUTHENTICATED"


def test_bad_input_is_a_typed_error(sdk, server, llm):
    m = sdk.models
    api = sign_up(sdk, server.url, "bea")
    other = sign_up(sdk, server.url, "mallory")

    wrong = expect(
        sdk.auth_token_create.sync(
            client=sdk.package.Client(base_url=server.url),
            body=m.TokenCreateRequest(username="bea", password="not the password"),
        ),
        m.Error,
    )
    assert (wrong.type_, wrong.code) == ("invalid_request", "INVALID_CREDENTIALS")

    bad_context = expect(
        sdk.conversations_create.sync(
            client=api,
            body=m.ConversationCreateRequest(
                agent="language-tutor", context=m.Context.from_dict({"도시": "서울"})
            ),
        ),
        m.Error,
    )
    assert bad_context.code == "VALIDATION_ERROR"
    assert [problem.code for problem in bad_context.fields["context.도시"]] == ["unknown_variable"]
    unknown_agent = expect(
        sdk.conversations_create.sync(client=api, body=m.ConversationCreateRequest(agent="nope")),
        m.Error,
    )
    assert unknown_agent.fields["agent"][0].code == "not_found"

    conversation = expect(
        sdk.conversations_create.sync(
            client=api, body=m.ConversationCreateRequest(agent="assistant")
        ),
        m.Conversation,
    )
    blank = sdk.messages_send.sync_detailed(
        conversation.id, client=api, body=m.MessageCreateRequest(content="")
    )
    assert blank.status_code == 400
    error = expect(blank.parsed, m.Error)
    assert (error.type_, error.code) == ("invalid_request", "VALIDATION_ERROR")
    assert error.fields.additional_keys == ["content"]
    assert error.fields["content"][0].code == "blank"

    both = expect(sdk.messages_list.sync(conversation.id, client=api, before=10, after=1), m.Error)
    assert both.code == "VALIDATION_ERROR" and both.fields["before"][0].code == "exclusive"

    # Someone else's conversation is exactly a missing one.
    for client, conversation_id in ((other, conversation.id), (api, 987654321)):
        missing = sdk.conversations_retrieve.sync_detailed(conversation_id, client=client)
        assert missing.status_code == 404
        assert expect(missing.parsed, m.Error).code == "NOT_FOUND"
    no_message = expect(sdk.messages_retrieve.sync(conversation.id, 987654321, client=api), m.Error)
    assert (no_message.type_, no_message.code) == ("not_found", "NOT_FOUND")

    # Conflicts.
    idle = sdk.conversations_cancel.sync_detailed(conversation.id, client=api)
    assert idle.status_code == 409 and expect(idle.parsed, m.Error).code == "NO_ACTIVE_TURN"
    empty = expect(sdk.conversations_regenerate.sync(conversation.id, client=api), m.Error)
    assert (empty.type_, empty.code) == ("conflict", "NOTHING_TO_REGENERATE")

    stranger = sdk.package.AuthenticatedClient(base_url=server.url, token="not-a-token")
    assert expect(sdk.auth_me.sync(client=stranger), m.Error).code == "NOT_AUTHENTICATED"


def test_turn_in_progress_and_cancel_with_the_async_api(sdk, server, llm):
    m = sdk.models
    api = sign_up(sdk, server.url, "cleo")
    conversation = expect(
        sdk.conversations_create.sync(
            client=api, body=m.ConversationCreateRequest(agent="assistant")
        ),
        m.Conversation,
    )
    llm.reply_text(["Once", " upon", " a", " time", *[" and"] * 40], chunk_delay=0.1)

    async def scenario() -> tuple[Any, Any, Any, Any]:
        async with sdk.package.AuthenticatedClient(
            base_url=server.url, token=api.token, timeout=httpx.Timeout(30)
        ) as client:
            running = asyncio.ensure_future(
                sdk.messages_send.asyncio_detailed(
                    conversation.id, client=client, body=m.MessageCreateRequest(content="A story")
                )
            )
            deadline = time.monotonic() + 10
            current = await sdk.conversations_retrieve.asyncio(conversation.id, client=client)
            while current.active_turn_id is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                current = await sdk.conversations_retrieve.asyncio(conversation.id, client=client)
            busy = await sdk.messages_send.asyncio(
                conversation.id, client=client, body=m.MessageCreateRequest(content="Hello?")
            )
            await asyncio.sleep(0.3)  # let a few deltas through
            cancelled = await sdk.conversations_cancel.asyncio(conversation.id, client=client)
            return current, busy, cancelled, await running

    current, busy, cancelled, finished = asyncio.run(scenario())
    assert current.active_turn_id is not None
    busy = expect(busy, m.Error)
    assert (busy.type_, busy.code) == ("conflict", "TURN_IN_PROGRESS")
    assert expect(cancelled, m.CancelResult).turn_id == current.active_turn_id
    assert finished.status_code == 201
    result = expect(finished.parsed, m.TurnResult)
    assert result.ai_message.status is m.MessageStatus.CANCELLED
    assert result.ai_message.text.startswith("Once")
    assert len(result.ai_message.text) < len("Once upon a time" + " and" * 40)
    assert str(result.ai_message.turn_id) == str(current.active_turn_id)


SEED = Path(__file__).resolve().parents[1] / "fixtures" / "seed"


def test_export_and_import_through_the_sdk(sdk, server):
    m = sdk.models
    api = sign_up(sdk, server.url, "export-sdk")
    other = sign_up(sdk, server.url, "export-other")
    rows = [
        json.loads((SEED / name).read_text()) for name in ("human_message.json", "ai_message.json")
    ]

    # The origin's rows, imported as they are.
    body = m.ConversationsImportBody.from_dict(
        {"conversations": [{"agent": "assistant", "title": "Origin", "messages": rows}]}
    )
    imported = expect(sdk.conversations_import.sync(client=api, body=body), m.ImportResult)
    [conversation] = imported.conversations
    assert conversation.message_count == 2 and conversation.title == "Origin"

    # Exported as JSON: the rows as stored, then imported again with new ids.
    exported = sdk.conversations_export.sync_detailed(conversation.id, client=api)
    assert exported.status_code == 200
    assert exported.headers["content-disposition"].startswith("attachment;")
    document = json.loads(exported.content)
    messages = document["conversations"][0]["messages"]
    assert [{"_type": r["_type"], "_value": r["_value"]} for r in messages] == rows
    again = expect(
        sdk.conversations_import.sync(
            client=api, body=m.ConversationsImportBody.from_dict(document)
        ),
        m.ImportResult,
    )
    assert again.conversations[0].id != conversation.id

    # The typed call parses JSON (the generator keeps one type per status): Markdown is
    # read through the SDK client's own httpx client.
    markdown = api.get_httpx_client().get(
        f"/api/v1/conversations/{conversation.id}/export/",
        params={"format": m.ConversationsExportFormat.MARKDOWN.value},
    )
    assert markdown.status_code == 200 and "hello" in markdown.text

    # A bad document: the typed error names the first bad field's path.
    rows[1]["_value"]["content"] = 5
    bad = expect(
        sdk.conversations_import.sync(
            client=api,
            body=m.ConversationsImportBody.from_dict(
                {"conversations": [{"agent": "assistant", "messages": rows}]}
            ),
        ),
        m.Error,
    )
    assert bad.fields.additional_keys == ["conversations[0].messages[1]._value.content"]

    # Everything as a zip; someone else's conversation is not found.
    archive = sdk.export_archive.sync_detailed(client=api)
    assert archive.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert f"confab-export/conversations/{conversation.id}.json" in names
    missing = sdk.conversations_export.sync_detailed(conversation.id, client=other)
    assert missing.status_code == 404 and expect(missing.parsed, m.Error).code == "NOT_FOUND"


def test_edit_regenerate_twice_switch_back_page_and_fork(sdk, server, llm):
    """Versions through the SDK: an edit and two regenerates keep every reply; switching
    back restores the first version's branch, which pages both ways like any history; a
    fork copies the active branch up to a message."""
    m = sdk.models
    api = sign_up(sdk, server.url, "vera")
    conversation = expect(
        sdk.conversations_create.sync(
            client=api, body=m.ConversationCreateRequest(agent="assistant")
        ),
        m.Conversation,
    )

    def sent(response: Any) -> Any:
        result = expect(response, m.TurnResult)
        assert result.ai_message.status is m.MessageStatus.COMPLETE, result.ai_message.error
        return result

    turns = []
    for content, reply in (("one", "A1"), ("two", "A2")):
        llm.reply_text([reply])
        turns.append(
            sent(
                sdk.messages_send.sync(
                    conversation.id, client=api, body=m.MessageCreateRequest(content=content)
                )
            )
        )
    first, second = turns
    two = second.human_message
    assert two.parent_id == first.ai_message.id
    assert (two.siblings.ids, two.siblings.index) == ([two.id], 0)

    llm.reply_text(["B1"])
    edited = sent(
        sdk.messages_edit.sync(
            conversation.id, two.id, client=api, body=m.MessageEditRequest(content="deux")
        )
    )
    deux = edited.human_message
    assert (deux.parent_id, deux.siblings.ids, deux.siblings.index) == (
        first.ai_message.id,
        [two.id, deux.id],
        1,
    )
    replies = [edited.ai_message]
    for text in ("B2", "B3"):
        llm.reply_text([text])
        replies.append(
            sent(sdk.conversations_regenerate.sync(conversation.id, client=api)).ai_message
        )
    assert [reply.text for reply in replies] == ["B1", "B2", "B3"]
    assert replies[-1].siblings.ids == [reply.id for reply in replies]
    assert replies[-1].siblings.index == 2
    newest = expect(sdk.messages_list.sync(conversation.id, client=api, limit=2), m.MessagePage)
    assert [message.text for message in newest.results] == ["deux", "B3"]

    # Back to the first version: the newest leaf under it is its old reply.
    switched = expect(
        sdk.conversations_branch.sync(
            conversation.id, client=api, body=m.MessageChoiceRequest(message_id=two.id)
        ),
        m.Conversation,
    )
    assert switched.active_leaf_id == second.ai_message.id

    page = expect(sdk.messages_list.sync(conversation.id, client=api, limit=2), m.MessagePage)
    backwards = [[(message.text, message.siblings.index) for message in page.results]]
    while page.has_older:
        page = expect(
            sdk.messages_list.sync(conversation.id, client=api, limit=2, before=page.older_cursor),
            m.MessagePage,
        )
        backwards.append([(message.text, message.siblings.index) for message in page.results])
    assert backwards == [[("two", 0), ("A2", 0)], [("one", 0), ("A1", 0)]]
    forwards = []
    while page.has_newer:
        page = expect(
            sdk.messages_list.sync(conversation.id, client=api, limit=2, after=page.newer_cursor),
            m.MessagePage,
        )
        forwards.extend(message.text for message in page.results)
    assert forwards == ["two", "A2"]

    # A fork of the restored branch up to the first reply: a new conversation of two messages.
    fork = expect(
        sdk.conversations_fork.sync(
            conversation.id,
            client=api,
            body=m.MessageChoiceRequest(message_id=first.ai_message.id),
        ),
        m.Conversation,
    )
    assert fork.id != conversation.id and fork.message_count == 2
    copied = expect(sdk.messages_list.sync(fork.id, client=api), m.MessagePage)
    assert [message.text for message in copied.results] == ["one", "A1"]

    # A message of another conversation is not found here.
    missing = sdk.conversations_branch.sync_detailed(
        fork.id, client=api, body=m.MessageChoiceRequest(message_id=two.id)
    )
    assert missing.status_code == 404
    assert expect(missing.parsed, m.Error).code == "NOT_FOUND"
