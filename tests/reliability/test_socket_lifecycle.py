"""Every socket type against issue 14's socket findings (docs/reliability.md):

- 14.2 a revoked credential (logout, logout-all, device revoke, expiry, deactivation)
  closes every socket opened with it, 4401, and no frame is served after it;
- 14.6 GraphQL sockets that never authenticate are closed on both protocols, and an
  address holds a bounded number of them;
- 14.9 a chat frame with NUL / a lone surrogate gets an error frame, a consumer that
  fails closes with a close frame, and the user's socket slot comes back every time;
- 14.13 a per-socket frame budget, and `resume` paged.

Through the project's ASGI application (token middleware, routing, consumers) with
Channels' communicator; on the in-memory layer by default and on Redis (revocations
travel through it) when REDIS_URL is set.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from django.contrib.auth import get_user_model
from django.urls import path
from django.utils import timezone
from knox.models import get_token_model

from accounts import services as accounts
from accounts.authentication import TokenAuthMiddleware
from backend.asgi import application
from conversations.close_codes import Close
from conversations.consumers import AgentChatConsumer
from conversations.models import ConversationMessage
from conversations.services import create_conversation
from tests.support.graphql import GraphQLSocket, auth_header
from tests.support.sockets import CLOSE, Socket, ws_path
from tests.support.tokens import make_token
from tests.support.turns import turn_cleanup  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]
ME = "subscription { conversationsChanged { __typename } }"
CREATE = 'mutation { createConversation(agent: "plain") { conversation { id } } }'


async def closed(socket: Socket, code: int, timeout: float = 5.0) -> None:
    """The socket's next frames end with a close `code` (frames before it are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = await socket.recv(timeout=max(0.05, deadline - time.monotonic()))
        if frame["type"] == CLOSE:
            assert frame["code"] == code, frame
            await socket.close()  # the consumer ends (its slots are given back) in the test
            return


async def gql_closed(socket: GraphQLSocket, code: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        output = await socket.communicator.receive_output(
            timeout=max(0.05, deadline - time.monotonic())
        )
        if output["type"] == "websocket.close":
            assert output.get("code") == code, output
            await socket.close()  # the consumer ends (its slots are given back) in the test
            return


async def rest(method: str, url: str, token: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.request(method, url, headers={"Authorization": f"Bearer {token}"})


async def stored_count(conversation_id: int) -> int:
    return await ConversationMessage.objects.filter(conversation_id=conversation_id).acount()


# --- 14.2: revoked credentials close their sockets ------------------------------------


@pytest.mark.parametrize("endpoint", ["/api/v1/auth/logout/", "/api/v1/auth/logout-all/"])
async def test_signing_out_closes_the_chat_socket_4401(conversation, token, endpoint):
    ws = Socket(ws_path(conversation.pk), token)
    assert (await ws.connect())["type"] == "ready"
    response = await rest("POST", endpoint, token)
    assert response.status_code in (200, 204), response.text
    await closed(ws, Close.UNAUTHENTICATED)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("in_init", [True, False], ids=["connection_init", "header"])
async def test_signing_out_everywhere_closes_graphql_sockets_4401(user, token, protocol, in_init):
    socket = GraphQLSocket(protocol=protocol, headers=None if in_init else auth_header(token))
    await socket.connect(token if in_init else None)
    await socket.subscribe("1", ME)
    response = await rest("POST", "/api/v1/auth/logout-all/", token)
    assert response.status_code in (200, 204), response.text
    await gql_closed(socket, Close.UNAUTHENTICATED)


async def test_revoking_a_device_closes_only_its_sockets(conversation, user, token):
    other_device = await sync_to_async(make_token)(user, "phone")
    kept = Socket(ws_path(conversation.pk), token)
    revoked = Socket(ws_path(conversation.pk), other_device)
    assert (await kept.connect())["type"] == "ready"
    assert (await revoked.connect())["type"] == "ready"
    device = await get_token_model().objects.filter(user=user, name="phone").afirst()
    await sync_to_async(accounts.revoke_device)(user=user, device_id=device.public_id)
    await closed(revoked, Close.UNAUTHENTICATED)
    await kept.ping()  # the other device's socket is untouched
    await kept.close()


async def test_no_frame_is_served_after_the_revocation_committed(llm, conversation, token):
    """Even when the socket never hears of the revocation (its group message lost, or
    still on its way), a frame that does work re-checks the token first."""
    ws = Socket(ws_path(conversation.pk), token)
    assert (await ws.connect())["type"] == "ready"
    # Deleted behind the services' back: no revocation message is sent.
    await get_token_model().objects.filter(user_id=conversation.user_id).adelete()
    await ws.send({"type": "message", "content": "still there?"})
    await closed(ws, Close.UNAUTHENTICATED)
    assert await stored_count(conversation.pk) == 0


EVENTS = "subscription($id: ID!) { conversationEvents(conversationId: $id) { __typename } }"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_no_graphql_operation_is_served_after_the_revocation(
    user, conversation, plain_agent, token, protocol
):
    from conversations.models import Conversation

    socket = GraphQLSocket(protocol=protocol)
    await socket.connect(token)
    await socket.subscribe("ok", EVENTS, {"id": conversation.pk})
    assert await socket.next_data("ok")  # served while the token is valid
    await get_token_model().objects.filter(user=user).adelete()
    await socket.subscribe("1", EVENTS, {"id": conversation.pk})
    if not socket.legacy:  # legacy graphql-ws runs no mutation over the socket
        await socket.subscribe("2", CREATE.replace("plain", plain_agent.slug))
    while True:
        output = await socket.communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            assert output.get("code") == Close.UNAUTHENTICATED
            break
        assert json.loads(output["text"]).get("id") not in ("1", "2"), output
    assert await Conversation.objects.filter(user=user).acount() == 1


@pytest.mark.parametrize("change", ["deactivated", "expired", "user deleted"])
async def test_the_sweep_closes_sockets_whose_credential_lapsed(
    conversation, user, token, settings, change
):
    """What sends no message (expiry, deactivation) is found by the per-process sweep."""
    settings.CONFAB_WS_AUTH_CHECK_SECONDS = 0.2
    ws = Socket(ws_path(conversation.pk), token)
    assert (await ws.connect())["type"] == "ready"
    socket = GraphQLSocket(protocol="graphql-ws")
    await socket.connect(token)
    if change == "deactivated":
        await get_user_model().objects.filter(pk=user.pk).aupdate(is_active=False)
    elif change == "expired":
        await (
            get_token_model()
            .objects.filter(user=user)
            .aupdate(expiry=timezone.now() - timedelta(seconds=1))
        )
    else:
        await get_user_model().objects.filter(pk=user.pk).adelete()
    await closed(ws, Close.UNAUTHENTICATED, timeout=3)
    await gql_closed(socket, Close.UNAUTHENTICATED, timeout=3)


async def test_a_revocation_reaches_sockets_through_the_channel_layer(conversation, token):
    """What another process does: only the group message, no database change here."""
    from accounts.revocation import abroadcast_revoked

    ws = Socket(ws_path(conversation.pk), token)
    assert (await ws.connect())["type"] == "ready"
    row = await get_token_model().objects.filter(user_id=conversation.user_id).afirst()
    await abroadcast_revoked([row.public_id])
    await closed(ws, Close.UNAUTHENTICATED)


# --- 14.6: GraphQL sockets that never authenticate -------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_socket_without_connection_init_is_closed_on_both_protocols(protocol, settings):
    settings.CONFAB_GRAPHQL_CONNECTION_INIT_SECONDS = 0.3
    socket = GraphQLSocket(protocol=protocol)
    await socket.open()
    await gql_closed(socket, Close.IDLE, timeout=3)


async def test_unauthenticated_sockets_per_address_are_capped(user, token, settings):
    settings.CONFAB_WS_MAX_UNAUTHENTICATED_PER_ADDRESS = 3

    def from_address(protocol: str) -> GraphQLSocket:
        socket = GraphQLSocket(protocol=protocol)
        socket.communicator.scope["client"] = ("198.51.100.7", 50000)
        return socket

    waiting = [from_address(PROTOCOLS[i % 2]) for i in range(3)]
    for socket in waiting:
        await socket.open()
    extra = from_address("graphql-ws")
    await extra.open()
    await gql_closed(extra, Close.TOO_MANY)
    # Authenticating frees the address's slot; so does closing.
    await waiting[0].send(
        {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
    )
    assert (await waiting[0].receive())["type"] == "connection_ack"
    await waiting[1].close()
    for _ in range(2):
        socket = from_address("graphql-transport-ws")
        await socket.connect(token)
        await socket.close()
    for socket in (waiting[0], waiting[2]):
        await socket.close()


# --- 14.9: bad text, failing consumers, and the per-user slot -------------------------


@pytest.mark.parametrize("text", ["a\\u0000b", "\\ud800", "x\\udfff"])
async def test_a_frame_with_unstorable_text_gets_an_error_frame(conversation, token, text):
    ws = Socket(ws_path(conversation.pk), token)
    assert (await ws.connect())["type"] == "ready"
    await ws.send('{"type": "message", "content": "' + text + '"}')
    error = await ws.until("error")
    assert error["code"] == "INVALID_TEXT"
    await ws.ping()  # the socket stays usable
    await ws.close()
    assert await stored_count(conversation.pk) == 0


class FailingConsumer(AgentChatConsumer):
    """A consumer with a bug: its `ping` handler raises."""

    greet_on_connect = False

    async def handle_ping(self, frame: Any) -> None:
        raise RuntimeError("a bug")


failing_app = TokenAuthMiddleware(
    URLRouter([path("ws/failing/<int:conversation_pk>/", FailingConsumer.as_asgi())])
)


async def test_twenty_dropped_sockets_leave_the_user_able_to_connect(conversation, token):
    """Each way a socket ends gives its slot back (CONFAB_WS_MAX_PER_USER is 20): bad text,
    a consumer that raises (closed 1011 with a close frame, not dropped), a client that
    goes away."""
    for i in range(20):
        if i % 2:
            ws = Socket(f"/ws/failing/{conversation.pk}/", token, app=failing_app)
            assert (await ws.connect())["type"] == "ready"
            await ws.send({"type": "ping"})
            await closed(ws, Close.INTERNAL_ERROR)
        else:
            ws = Socket(ws_path(conversation.pk), token)
            assert (await ws.connect())["type"] == "ready"
            await ws.send('{"type": "message", "content": "\\ud800\\u0000"}')
            assert (await ws.until("error"))["code"] == "INVALID_TEXT"
            await ws.close()
    ws = Socket(ws_path(conversation.pk), token)
    assert (await ws.connect())["type"] == "ready"
    await ws.close()


# --- 14.13: frame budget and paged resume ----------------------------------------------


async def test_the_chat_socket_closes_4429_past_its_frame_budget(conversation, token, settings):
    settings.CONFAB_WS_FRAME_BURST = 5
    settings.CONFAB_WS_FRAME_RATE = 0.001
    ws = Socket(ws_path(conversation.pk), token)
    assert (await ws.connect())["type"] == "ready"
    for _ in range(6):
        await ws.send({"type": "ping"})
    await closed(ws, Close.TOO_MANY)
    assert len(ws.of_type("pong")) == 5


async def test_a_resume_costs_more_of_the_budget(conversation, token, settings):
    settings.CONFAB_WS_FRAME_BURST = 25
    settings.CONFAB_WS_FRAME_RATE = 0.001
    ws = Socket(ws_path(conversation.pk), token)
    assert (await ws.connect())["type"] == "ready"
    for _ in range(3):
        await ws.send({"type": "resume", "after_id": 0})
    await closed(ws, Close.TOO_MANY)
    assert len(ws.of_type("resumed")) == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_graphql_sockets_close_4429_past_their_frame_budget(token, settings, protocol):
    settings.CONFAB_WS_FRAME_BURST = 4
    settings.CONFAB_WS_FRAME_RATE = 0.001
    socket = GraphQLSocket(protocol=protocol)
    await socket.connect(token)  # connection_init: one frame
    for i in range(4):
        await socket.subscribe(str(i), ME)
        if i < 3:
            await socket.complete(str(i))
    await gql_closed(socket, Close.TOO_MANY)


async def test_resume_is_paged(user, plain_agent, token, settings):
    settings.CONFAB_WS_RESUME_PAGE = 2
    conversation = await sync_to_async(create_conversation)(user=user, agent=plain_agent)
    ids = []
    for i in range(5):
        message = await ConversationMessage.objects.acreate(
            conversation=conversation,
            user_id=user.pk,
            role="human",
            content={"_type": "HumanMessage", "_value": {"content": f"m{i}", "type": "human"}},
            text=f"m{i}",
        )
        ids.append(message.pk)
    ws = Socket(ws_path(conversation.pk), token)
    assert (await ws.connect())["type"] == "ready"
    seen: list[int] = []
    after_id = 0
    pages = 0
    while True:
        await ws.send({"type": "resume", "after_id": after_id})
        page: list[int] = []
        while True:
            frame = await ws.recv()
            if frame["type"] == "resumed":
                break
            page.append(frame["message"]["id"])
        assert len(page) <= 2
        pages += 1
        seen += page
        after_id = frame["after_id"]
        if not frame["has_more"]:
            break
    assert seen == ids and pages == 3
    await ws.close()


# --- presence: no push for a conversation someone follows live --------------------------


def _register_browser(user: Any) -> None:
    from accounts.services import register_push

    make_token(user, "Browser")
    token = get_token_model().objects.filter(user=user).latest("created")
    register_push(
        token=token,
        platform="webpush",
        data={"endpoint": "https://push.invalid/s/1", "keys": {"p256dh": "k", "auth": "a"}},
    )


def _end_reply(conversation: Any) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    from conversations import services

    start = services.begin_turn(conversation=conversation, content=HumanMessage("hi"))
    services.finish_message(
        conversation_id=conversation.pk,
        turn_id=start.turn_id,
        message_id=start.ai_message.pk,
        message=AIMessage("Done."),
        status="complete",
        release_lock=True,
    )


async def pushes_queued() -> int:
    from conversations.notifications.models import Notification

    return await Notification.objects.filter(channel="webpush").acount()


@pytest.fixture
def push_configured(settings):
    from tests.support.receivers import VapidKeys

    keys = VapidKeys.generate()
    settings.CONFAB_VAPID_PRIVATE_KEY = keys.private
    settings.CONFAB_VAPID_PUBLIC_KEY = keys.public
    settings.CONFAB_VAPID_SUBJECT = "mailto:ops@confab.test"


@pytest.mark.parametrize("surface", ["chat", "graphql-transport-ws", "graphql-ws"])
async def test_a_conversation_followed_live_queues_no_push(
    push_configured, conversation, user, token, surface
):
    await sync_to_async(_register_browser)(user)
    if surface == "chat":
        ws = Socket(ws_path(conversation.pk), token)
        assert (await ws.connect())["type"] == "ready"
    else:
        ws = GraphQLSocket(protocol=surface)
        await ws.connect(token)
        await ws.subscribe(
            "1",
            "subscription($id: ID!) { conversationEvents(conversationId: $id) { __typename } }",
            {"id": conversation.pk},
        )
        await ws.next_data("1")  # the snapshot: following from now on
    await sync_to_async(_end_reply)(conversation)
    assert await pushes_queued() == 0
    await ws.close()
    # Nobody follows once the socket is gone: the next reply is pushed.
    await sync_to_async(_end_reply)(conversation)
    assert await pushes_queued() == 1


async def test_deactivating_a_user_in_the_admin_closes_their_sockets_at_once(
    conversation, user, token, settings
):
    """A save (the admin's, a command's) announces it: no wait for the sweep."""
    settings.CONFAB_WS_AUTH_CHECK_SECONDS = 3600
    ws = Socket(ws_path(conversation.pk), token)
    assert (await ws.connect())["type"] == "ready"
    socket = GraphQLSocket(protocol="graphql-transport-ws")
    await socket.connect(token)
    user.is_active = False
    await sync_to_async(user.save)()
    await closed(ws, Close.UNAUTHENTICATED)
    await gql_closed(socket, Close.UNAUTHENTICATED)
