"""The live chat websocket, `/ws/conversations/<id>/`, through the project's ASGI application.

Frames, close codes, resume, a second device, bad frames, limits, and a subclass
in the seed's style (open access, fixed prompt context, LLM overrides).
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from django.core.cache import cache
from django.urls import path
from django.utils import timezone
from knox.models import get_token_model

from accounts.authentication import TokenAuthMiddleware
from conversations.consumers import AgentChatConsumer
from conversations.models import Conversation, ConversationMessage, MessageStatus
from conversations.services import create_conversation
from conversations.turns import start_turn, wait_for_result
from tests.support.sockets import CLOSE, Socket, ws_path
from tests.support.turns import eventually, turn_cleanup  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


async def stored(conversation_id: int) -> list[ConversationMessage]:
    return [
        m
        async for m in ConversationMessage.objects.filter(conversation_id=conversation_id).order_by(
            "id"
        )
    ]


# --- the happy path -------------------------------------------------------------------


async def test_ready_then_a_message_streams_and_completes(llm, conversation, token):
    llm.reply_text(["Hi ", "there", "!"], usage=(4, 3), chunk_delay=0.05)
    ws = Socket(ws_path(conversation.pk), token)
    ready = await ws.connect()
    assert ready["type"] == "ready"
    assert ready["conversation"]["id"] == conversation.pk
    assert ready["last_message_id"] is None and ready["active_turn"] is None

    await ws.send({"type": "message", "content": "hello", "client_message_id": "m-1"})
    done = await ws.until("message.completed")
    created = ws.of_type("message.created")
    assert [f["message"]["role"] for f in created] == ["human", "ai"]
    assert created[0]["message"]["text"] == "hello"
    assert created[0]["message"]["client_message_id"] == "m-1"
    assert created[1]["message"]["status"] == "streaming"
    deltas = ws.of_type("message.delta")
    assert deltas and all(d["message_id"] == created[1]["message"]["id"] for d in deltas)
    assert [d["index"] for d in deltas] == list(range(len(deltas)))
    assert "".join(d["delta"] for d in deltas) == "Hi there!"
    assert done["message"]["id"] == created[1]["message"]["id"]
    assert done["message"]["status"] == "complete" and done["message"]["text"] == "Hi there!"
    assert done["message"]["usage"]["total_tokens"] == 7
    # The frame order a client can rely on.
    order = [f["type"] for f in ws.frames if f["type"].startswith("message.")]
    assert order[:2] == ["message.created", "message.created"]
    assert order[-1] == "message.completed" and set(order[2:-1]) == {"message.delta"}
    await ws.ping()
    await ws.close()


async def test_the_tutor_greets_on_connect(llm, tutor_conversation, token):
    llm.reply_text(["你好"])
    ws = Socket(ws_path(tutor_conversation.pk), token)
    assert (await ws.connect())["type"] == "ready"
    created = await ws.until("message.created")
    assert created["message"]["text"] == "첫 문장으로 대화를 시작해주세요."
    await ws.until("message.completed")
    system, first = llm.requests[0].messages
    assert "중국어" in system["content"] and first["content"] == created["message"]["text"]
    await ws.close()
    # Reconnecting to a conversation that has messages does not greet again.
    again = Socket(ws_path(tutor_conversation.pk), token)
    assert (await again.connect())["type"] == "ready"
    assert await again.quiet(0.3)
    await again.close()
    assert len(llm.requests) == 1


async def test_cancel_over_the_socket(llm, conversation, token):
    llm.reply_text([f"word{i} " for i in range(40)], chunk_delay=0.05)
    ws = Socket(ws_path(conversation.pk), token)
    await ws.connect()
    await ws.send({"type": "message", "content": "talk"})
    await ws.until("message.delta")
    await ws.send({"type": "cancel"})
    done = await ws.until("message.completed")
    assert done["message"]["status"] == "cancelled"
    assert done["message"]["text"].startswith("word0 ")
    # Nothing left to cancel: an error frame, and the socket stays usable.
    await ws.send({"type": "cancel"})
    error = await ws.until("error")
    assert error["code"] == "NO_ACTIVE_TURN"
    await ws.ping()
    await ws.close()


async def test_regenerate_keeps_the_old_reply_on_its_branch(llm, conversation, token):
    llm.reply_text(["First answer."])
    llm.reply_text(["Second answer."])
    ws = Socket(ws_path(conversation.pk), token)
    await ws.connect()
    await ws.send({"type": "message", "content": "question"})
    first = await ws.until("message.completed")
    await ws.send({"type": "regenerate"})
    created = await ws.until("message.created")
    assert created["message"]["role"] == "ai"
    switched = await ws.until("conversation.branch_changed")
    assert switched["active_leaf_id"] == created["message"]["id"]
    second = await ws.until("message.completed")
    assert second["message"]["text"] == "Second answer."
    assert second["message"]["siblings"] == {
        "ids": [first["message"]["id"], second["message"]["id"]],
        "index": 1,
    }
    rows = await stored(conversation.pk)
    assert [(r.role, r.text, r.on_path) for r in rows] == [
        ("human", "question", True),
        ("ai", "First answer.", False),
        ("ai", "Second answer.", True),
    ]
    # The model was asked the question again, without the other answer.
    assert llm.requests[1].messages[1:] == [{"role": "user", "content": "question"}]
    await ws.close()


async def test_a_turn_already_running_and_a_repeated_message(llm, conversation, token):
    llm.reply_text(["slow ", "reply"], chunk_delay=0.2)
    ws = Socket(ws_path(conversation.pk), token)
    await ws.connect()
    await ws.send({"type": "message", "content": "one", "client_message_id": "c-1"})
    await ws.until("message.created", role="ai")
    await ws.send({"type": "message", "content": "two"})
    assert (await ws.until("error"))["code"] == "TURN_IN_PROGRESS"
    await ws.until("message.completed")
    # The same client_message_id again: the stored turn is sent back, nothing runs.
    await ws.send({"type": "message", "content": "one", "client_message_id": "c-1"})
    human = await ws.until("message.completed")
    ai = await ws.until("message.completed")
    assert (human["message"]["text"], ai["message"]["text"]) == ("one", "slow reply")
    assert len(llm.requests) == 1
    assert len(await stored(conversation.pk)) == 2
    await ws.close()


async def test_resume_replays_what_was_missed_then_goes_live(llm, conversation, token):
    ws = Socket(ws_path(conversation.pk), token)
    await ws.connect()
    await ws.send({"type": "message", "content": "first"})
    seen = (await ws.until("message.completed"))["message"]["id"]
    await ws.close()

    # While the client is away, one turn completes and another is streaming.
    llm.reply_text(["missed reply"])
    await wait_for_result(await start_turn(conversation=conversation, content="missed"))
    llm.reply_text([f"live{i} " for i in range(10)], chunk_delay=0.1)
    running = await start_turn(conversation=conversation, content="running")
    await eventually(lambda: len(llm.requests) == 3 and len(llm.requests[2].chunks) > 3)

    back = Socket(ws_path(conversation.pk), token)
    ready = await back.connect()
    assert ready["active_turn"] == str(running.turn_id)
    await back.send({"type": "resume", "after_id": seen})
    replay = [await back.recv() for _ in range(4)]
    replay = [f for f in replay if f["type"] != "message.delta"]  # live deltas may interleave
    while len(replay) < 4:
        frame = await back.recv()
        if frame["type"] != "message.delta":
            replay.append(frame)
    assert [(f["type"], f["message"]["text"]) for f in replay[:3]] == [
        ("message.completed", "missed"),
        ("message.completed", "missed reply"),
        ("message.completed", "running"),
    ]
    assert replay[3]["type"] == "message.created"
    assert replay[3]["message"]["id"] == running.ai_message.pk
    assert replay[3]["message"]["status"] == "streaming"
    # Then live: the rest of the running reply arrives as deltas and completes.
    done = await back.until("message.completed", id=running.ai_message.pk)
    assert done["message"]["text"] == "".join(f"live{i} " for i in range(10))
    later_deltas = [
        d for d in back.of_type("message.delta") if d["message_id"] == running.ai_message.pk
    ]
    assert later_deltas, "no live deltas after the replay"
    # A client can stitch the partial text and the deltas by offset.
    assert later_deltas[-1]["offset"] + len(later_deltas[-1]["delta"]) == len(
        done["message"]["text"]
    )
    await back.close()


async def test_a_second_device_sees_the_turn_live(llm, conversation, token, user):
    llm.reply_text(["Seen ", "twice"], chunk_delay=0.05)
    other_device = (await sync_to_async(get_token_model().objects.create)(user=user, name="tab"))[1]
    phone = Socket(ws_path(conversation.pk), token)
    laptop = Socket(ws_path(conversation.pk), other_device)
    await phone.connect()
    await laptop.connect()
    await phone.send({"type": "message", "content": "from the phone"})
    done = await laptop.until("message.completed")
    assert done["message"]["text"] == "Seen twice"
    assert [f["message"]["role"] for f in laptop.of_type("message.created")] == ["human", "ai"]
    assert "".join(d["delta"] for d in laptop.of_type("message.delta")) == "Seen twice"
    await phone.until("message.completed")
    await phone.close()
    await laptop.close()


async def test_a_client_that_disconnects_does_not_stop_the_turn(llm, conversation, token):
    deltas = [f"d{i} " for i in range(15)]
    llm.reply_text(deltas, chunk_delay=0.05)
    ws = Socket(ws_path(conversation.pk), token)
    await ws.connect()
    await ws.send({"type": "message", "content": "keep going"})
    created = await ws.until("message.created", role="ai")
    await ws.until("message.delta")
    await ws.close()

    async def finished():
        row = await ConversationMessage.objects.aget(pk=created["message"]["id"])
        return row if row.status != MessageStatus.STREAMING else None

    row = await eventually(finished, timeout=10, what="the turn to finish")
    assert row.status == MessageStatus.COMPLETE and row.text == "".join(deltas)


# --- authentication and access -----------------------------------------------------------


async def assert_closed(socket: Socket, code: int) -> None:
    frame = await socket.connect()
    if frame["type"] != CLOSE:
        frame = await socket.recv()
    assert frame == {"type": CLOSE, "code": code}
    await socket.close()


async def test_no_or_bad_token_closes_4401(conversation, token, user):
    await assert_closed(Socket(ws_path(conversation.pk)), 4401)
    await assert_closed(Socket(ws_path(conversation.pk), "not-a-real-token"), 4401)
    await assert_closed(
        Socket(ws_path(conversation.pk), headers=[(b"authorization", b"Basic x")]), 4401
    )
    await assert_closed(Socket(f"{ws_path(conversation.pk)}?token=wrong"), 4401)
    await sync_to_async(get_token_model().objects.filter(user=user).update)(
        expiry=timezone.now() - timedelta(seconds=1)
    )
    await assert_closed(Socket(ws_path(conversation.pk), token), 4401)


async def test_token_in_the_query_string_and_token_scheme(conversation, token):
    ws = Socket(f"{ws_path(conversation.pk)}?token={token}")
    assert (await ws.connect())["type"] == "ready"
    await ws.close()
    ws = Socket(ws_path(conversation.pk), headers=[(b"authorization", f"Token {token}".encode())])
    assert (await ws.connect())["type"] == "ready"
    await ws.close()


async def test_someone_elses_or_a_missing_conversation_closes_4404(conversation, other_token):
    await assert_closed(Socket(ws_path(conversation.pk), other_token), 4404)
    await assert_closed(Socket(ws_path(conversation.pk + 1000), other_token), 4404)


# --- bad frames and limits ------------------------------------------------------------------


async def test_bad_frames_get_an_error_and_the_socket_stays_usable(
    llm, conversation, token, settings
):
    settings.CONFAB_WS_MAX_FRAME_BYTES = 1_000
    settings.CONFAB_MAX_CONTENT_CHARS = 50
    ws = Socket(ws_path(conversation.pk), token)
    await ws.connect()
    cases = [
        ("{not json", "INVALID_JSON"),
        ("[1]", "INVALID_FRAME"),
        ('{"type": "launch"}', "UNKNOWN_TYPE"),
        (json.dumps({"type": "message", "content": "x" * 2_000}), "FRAME_TOO_LARGE"),
        (json.dumps({"type": "message", "content": "x" * 51}), "VALIDATION_ERROR"),
        (json.dumps({"type": "message", "content": "   "}), "VALIDATION_ERROR"),
        (json.dumps({"type": "message", "content": ["a"]}), "VALIDATION_ERROR"),
        (json.dumps({"type": "resume", "after_id": "x"}), "INVALID_FRAME"),
        (json.dumps({"type": "regenerate"}), "NOTHING_TO_REGENERATE"),
    ]
    for text, code in cases:
        await ws.send(text)
        error = await ws.until("error")
        assert error["code"] == code, text
        assert set(error) <= {"type", "code", "detail", "fields"} and error["detail"]
        await ws.ping()
    too_long = next(f for f in ws.of_type("error") if f.get("fields"))
    assert too_long["fields"]["content"][0]["code"] == "too_long"
    await ws.comm.send_to(bytes_data=b"\x00\x01")
    assert (await ws.until("error"))["code"] == "INVALID_FRAME"
    await ws.ping()
    assert await stored(conversation.pk) == [] and llm.requests == []
    await ws.close()


async def test_an_idle_socket_is_closed_4408(conversation, token, settings):
    settings.CONFAB_WS_IDLE_TIMEOUT = 0.5
    ws = Socket(ws_path(conversation.pk), token)
    await ws.connect()
    await ws.ping()  # activity keeps it open
    started = time.monotonic()
    error = await ws.until("error", timeout=3)
    assert error["code"] == "IDLE_TIMEOUT"
    assert (await ws.recv()) == {"type": CLOSE, "code": 4408}
    assert 0.3 < time.monotonic() - started < 2
    await ws.close()


async def test_too_many_sockets_per_user_closes_4429(conversation, token, user, settings):
    settings.CONFAB_WS_MAX_PER_USER = 2
    await cache.adelete(f"confab:ws:user:{user.pk}")
    first, second = Socket(ws_path(conversation.pk), token), Socket(ws_path(conversation.pk), token)
    assert (await first.connect())["type"] == "ready"
    assert (await second.connect())["type"] == "ready"
    await assert_closed(Socket(ws_path(conversation.pk), token), 4429)
    # A closed socket frees its place.
    await first.close()
    fourth = Socket(ws_path(conversation.pk), token)
    assert (await fourth.connect())["type"] == "ready"
    await fourth.close()
    await second.close()


# --- a subclass in the seed's style -----------------------------------------------------------


class TutorConsumer(AgentChatConsumer):
    """The seed's LanguageTutorChatConsumer, on Confab's consumer."""

    llm_model = "tutor-override-model"
    llm_temperature = 0.15
    llm_system_prompt_template = "You teach {언어} at the {레벨} level. Scene: {상황}."
    llm_first_user_message_template = "Begin in {언어}, please."
    completed: list[tuple[int, int, list]] = []

    async def can_accept(self) -> bool:
        return True

    async def aget_conversation(self) -> Conversation | None:
        if self.conversation is None:
            self.conversation = await Conversation.objects.aget(pk=self.get_conversation_pk())
        return self.conversation

    def get_llm_prompt_context_data(self) -> dict[str, Any]:
        return {"언어": "독일어", "상황": "빵집에서 빵을 사는 상황", "레벨": "고급"}

    async def on_conversation_complete(self, human_message, ai_message, tools_output_list):
        TutorConsumer.completed.append((human_message.pk, ai_message.pk, tools_output_list))


tutor_app = TokenAuthMiddleware(
    URLRouter([path("ws/tutor/<int:conversation_pk>/", TutorConsumer.as_asgi())])
)


async def test_a_subclass_overrides_access_prompt_model_and_hooks(llm, user, tutor):
    TutorConsumer.completed.clear()
    conversation = await sync_to_async(create_conversation)(user=user, agent=tutor)
    llm.reply_text(["Guten ", "Tag!"])
    llm.reply_text(["Ein Brot, bitte."])
    ws = Socket(f"/ws/tutor/{conversation.pk}/", app=tutor_app)  # open access: no token
    assert (await ws.connect())["type"] == "ready"
    greeting = await ws.until("message.completed", role="ai")
    assert greeting["message"]["text"] == "Guten Tag!"
    await ws.send({"type": "message", "content": "Ich möchte ein Brot."})
    await ws.until("message.completed", text="Ein Brot, bitte.")
    await ws.close()

    expected_system = "You teach 독일어 at the 고급 level. Scene: 빵집에서 빵을 사는 상황."
    first, second = llm.requests
    assert first.body["model"] == second.body["model"] == "tutor-override-model"
    assert first.body["temperature"] == second.body["temperature"] == 0.15
    assert first.messages == [
        {"role": "system", "content": expected_system},
        {"role": "user", "content": "Begin in 독일어, please."},
    ]
    assert second.messages[0] == {"role": "system", "content": expected_system}
    assert second.messages[1:] == [
        {"role": "user", "content": "Begin in 독일어, please."},
        {"role": "assistant", "content": "Guten Tag!"},
        {"role": "user", "content": "Ich möchte ein Brot."},
    ]
    rows = await stored(conversation.pk)
    assert [r.model for r in rows if r.role == "ai"] == ["tutor-override-model"] * 2
    await eventually(lambda: len(TutorConsumer.completed) == 2)
    assert TutorConsumer.completed == [(rows[0].pk, rows[1].pk, []), (rows[2].pk, rows[3].pk, [])]


async def test_the_completion_hook_runs_after_the_socket_is_gone(llm, user, tutor):
    TutorConsumer.completed.clear()
    conversation = await sync_to_async(create_conversation)(user=user, agent=tutor)
    llm.reply_text([f"t{i} " for i in range(10)], chunk_delay=0.05)
    ws = Socket(f"/ws/tutor/{conversation.pk}/", app=tutor_app)
    await ws.connect()
    await ws.until("message.delta")
    await ws.close()
    await eventually(lambda: len(TutorConsumer.completed) == 1, timeout=10)
    rows = await stored(conversation.pk)
    assert rows[-1].status == MessageStatus.COMPLETE
    assert TutorConsumer.completed[0][1] == rows[-1].pk


# --- the conversation changing on another surface -----------------------------------------


async def test_a_context_change_elsewhere_applies_to_the_next_turn(llm, tutor_conversation, token):
    await sync_to_async(ConversationMessage.objects.create)(
        conversation=tutor_conversation,
        user_id=tutor_conversation.user_id,
        role="human",
        content={"_type": "HumanMessage", "_value": {"content": "hi", "type": "human"}},
        text="hi",
    )  # not empty: no greeting
    ws = Socket(ws_path(tutor_conversation.pk), token)
    await ws.connect()
    # Meanwhile, the app's settings screen changes the level over REST.
    from conversations.services import update_conversation

    await sync_to_async(update_conversation)(
        conversation=await Conversation.objects.select_related("agent").aget(
            pk=tutor_conversation.pk
        ),
        context={"레벨": "고급"},
    )
    await ws.until("conversation.updated")
    await ws.send({"type": "message", "content": "다시"})
    await ws.until("message.completed", role="ai")
    system = llm.requests[0].messages[0]["content"]
    assert "고급" in system and "초급" not in system
    await ws.close()


async def test_a_deleted_conversation_closes_the_socket_4404(conversation, token):
    from conversations.services import delete_conversation

    conversation_id = conversation.pk
    ws = Socket(ws_path(conversation_id), token)
    await ws.connect()
    await sync_to_async(delete_conversation)(conversation=conversation)
    deleted = await ws.until("conversation.deleted")
    assert deleted["conversation_id"] == conversation_id
    assert await ws.recv() == {"type": CLOSE, "code": 4404}
    await ws.close()
