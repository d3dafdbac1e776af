"""The web chat app in a real browser (Debian's Chromium driven by Playwright) against a
live Confab server (uvicorn; SQLite or PostgreSQL + Redis) whose model is the fake
OpenAI server.

Covers: sign in, creating a language-tutor conversation with its context variables,
sending Korean text, a reply streamed in over the GraphQL subscription, history after
a reload, stop (cancel) of a slow reply, regenerate (the old reply kept as a version),
editing a sent message and switching between versions (`< i/n >`), the phone layout, and no console
errors. The live connection (graphql-ws's client, vendored) is broken on purpose
through a TCP proxy: a server restart, a socket dropped mid-reply, a dead connection
only pings notice, and a socket the server refuses (too many) are all followed by a
reconnect, the same token, both subscriptions again and what was missed fetched.
Screenshots go to build/screenshots/, or to docs/screenshots/ (the committed ones)
with CONFAB_UPDATE_SCREENSHOTS=1.
"""

# Chinese full-width punctuation in the scripted replies is intended.
# ruff: noqa: RUF001

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model

from tests.support.tcp_proxy import TcpProxy

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Page, WebSocket, expect

from tests.support.browser import (
    DESKTOP,
    PHONE,
    SERVER_ENV,
    ConsoleWatcher,
    ai_messages,
    new_page,
    off_loop,
    screenshot_dir,
    send,
    sign_in,
)

HUMAN_TEXT = "안녕하세요! 커피 한 잔 주세요."
REPLY_DELTAS = ["你好！", "欢迎光临星巴克。", "您想喝什么咖啡？", "大杯还是中杯？"]
REPLY_TEXT = "".join(REPLY_DELTAS)
SECOND_TEXT = "라떼 한 잔 주세요. 따뜻한 걸로요."
SECOND_DELTAS = ["好的，", "一杯热拿铁。", "请问您要什么尺寸？"]

pytestmark = pytest.mark.timeout(180)


def start_tutor_conversation(page: Page) -> None:
    page.locator("#new-conversation").click()
    dialog = page.get_by_role("dialog", name="New conversation")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Agent")).to_have_value("language-tutor")
    # The tutor's context variables, with their defaults.
    expect(dialog.get_by_label("언어")).to_have_value("중국어")
    expect(dialog.get_by_label("상황")).to_have_value("스타벅스에서 커피를 주문하는 상황")
    expect(dialog.get_by_label("레벨")).to_have_value("초급")
    dialog.get_by_role("button", name="Start").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#chat-subtitle")).to_contain_text("언어: 중국어")


def test_chat_streams_a_reply_and_keeps_history(web, web_user, llm) -> None:
    page, console = web
    llm.reply_text(REPLY_DELTAS, chunk_delay=0.5, usage=(30, 12))

    sign_in(page)
    expect(page.get_by_text("No conversations yet.")).to_be_visible()
    start_tutor_conversation(page)
    send(page, HUMAN_TEXT)

    human = page.locator("#messages .msg-human")
    expect(human).to_have_count(1)
    expect(human.locator(".msg-text")).to_have_text(HUMAN_TEXT)

    # The reply streams: first partial text while STREAMING, with Stop offered ...
    reply = ai_messages(page).last
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(reply.locator(".msg-text")).to_contain_text(REPLY_DELTAS[0])
    assert reply.get_attribute("data-status") == "streaming"
    partial = reply.locator(".msg-text").inner_text()
    assert partial != REPLY_TEXT and REPLY_TEXT.startswith(partial)
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(page.locator("#messages")).to_have_attribute("aria-busy", "true")
    # ... then the whole text, complete.
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator(".msg-text")).to_have_text(REPLY_TEXT)
    expect(page.get_by_role("button", name="Send message")).to_be_visible()
    expect(page.locator("#messages")).to_have_attribute("aria-busy", "false")

    # The model got the Korean text, and the tutor's prompt with its context.
    body = llm.requests[-1].body
    assert body["messages"][-1]["content"] == HUMAN_TEXT
    assert "중국어" in body["messages"][0]["content"]

    # The list shows the conversation; untitled, by its agent's name (automatic titles
    # are off on this server: test_an_untitled_conversation_is_named_by_the_server).
    item = page.locator("#conversation-list .conversation-item")
    expect(item).to_have_count(1)
    expect(item.locator(".conversation-title")).to_have_text("Language tutor")
    expect(item).to_have_attribute("aria-current", "page")

    # A reload keeps the session and the open conversation, and shows the history.
    page.reload()
    expect(page.locator("#messages .msg-human .msg-text")).to_have_text(HUMAN_TEXT)
    expect(ai_messages(page).locator(".msg-text")).to_have_text(REPLY_TEXT)
    expect(page.locator("#history-status")).to_have_text("Beginning of the conversation")
    expect(page.locator("#chat-subtitle")).to_have_text(
        "Language tutor · 언어: 중국어 · 상황: 스타벅스에서 커피를 주문하는 상황 · 레벨: 초급"
    )

    # Sending still works after the reload (a new subscription).
    llm.reply_text(SECOND_DELTAS, chunk_delay=0.1)
    send(page, SECOND_TEXT)
    expect(ai_messages(page)).to_have_count(2)
    expect(ai_messages(page).last).to_have_attribute("data-status", "complete")
    expect(ai_messages(page).last.locator(".msg-text")).to_have_text("".join(SECOND_DELTAS))

    shots = screenshot_dir()
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "desktop.png"))

    # Phone: one pane at a time with a back button.
    page.set_viewport_size(PHONE)
    expect(page.locator("#sidebar")).to_be_hidden()
    expect(page.get_by_role("button", name="Back to conversations")).to_be_visible()
    expect(ai_messages(page).first.locator(".msg-text")).to_have_text(REPLY_TEXT)
    page.screenshot(path=str(shots / "phone.png"))
    page.get_by_role("button", name="Back to conversations").click()
    expect(page.locator("#sidebar")).to_be_visible()
    expect(page.locator("#chat")).to_be_hidden()
    page.locator("#conversation-list .conversation-item").first.click()
    expect(page.locator("#messages .msg-human .msg-text").first).to_have_text(HUMAN_TEXT)

    assert console.errors == []


@pytest.fixture
def titled_web(browser: Browser, live_server_factory, seed_agents):
    """A fresh page on a live server with automatic titles on (off in the test settings)."""
    server = live_server_factory(extra_env={**SERVER_ENV, "CONFAB_AUTO_TITLES": "1"})
    page, watcher = new_page(browser, server.url)
    yield page, watcher
    page.context.close()


def test_an_untitled_conversation_is_named_by_the_server(titled_web, web_user, llm) -> None:
    page, console = titled_web
    llm.reply_text(REPLY_DELTAS)
    llm.reply_text(["Ordering coffee in Chinese"])

    sign_in(page)
    start_tutor_conversation(page)
    send(page, HUMAN_TEXT)
    expect(ai_messages(page).last).to_have_attribute("data-status", "complete")

    # After the reply, the model's title arrives live: in the list and the header.
    item = page.locator("#conversation-list .conversation-item")
    expect(item.locator(".conversation-title")).to_have_text("Ordering coffee in Chinese")
    expect(page.locator("#chat-title")).to_have_text("Ordering coffee in Chinese")
    title_request = llm.requests[-1].body
    assert title_request["max_completion_tokens"] == 32
    assert HUMAN_TEXT in title_request["messages"][-1]["content"]
    # The browser no longer names it after the first message itself: that title would
    # be the user's, and the server would not have asked for one.
    assert console.errors == []


def test_stop_and_regenerate(web, web_user, llm) -> None:
    page, console = web
    slow = [f"第{i}句。" for i in range(1, 41)]
    llm.reply_text(slow, chunk_delay=0.25)
    llm.reply_text(["好的，", "我们重新开始吧。"], chunk_delay=0.1)

    sign_in(page)
    start_tutor_conversation(page)
    send(page, "천천히 말해 주세요.")
    reply = ai_messages(page).last
    expect(reply.locator(".msg-text")).to_contain_text("第2句。")
    page.get_by_role("button", name="Stop").click()

    # The reply ends CANCELLED with its partial text, and the composer is back.
    expect(reply).to_have_attribute("data-status", "cancelled")
    expect(reply.get_by_text("Stopped")).to_be_visible()
    stopped_text = reply.locator(".msg-text").inner_text()
    assert stopped_text.startswith("第1句。") and stopped_text != "".join(slow)
    expect(page.get_by_role("button", name="Send message")).to_be_visible()
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()

    # Regenerate shows a new reply in place of the stopped one, which is kept: 2/2.
    page.get_by_role("button", name="Regenerate this reply").click()
    expect(ai_messages(page)).to_have_count(1)
    expect(ai_messages(page).last).to_have_attribute("data-status", "complete")
    expect(ai_messages(page).last.locator(".msg-text")).to_have_text("好的，我们重新开始吧。")
    expect(page.locator("#messages .badge", has_text="Stopped")).to_have_count(0)
    versions = ai_messages(page).last.locator(".version-count")
    expect(versions).to_have_text("2/2")

    # The stopped reply is one click away, and so is the way back; a reload keeps the choice.
    ai_messages(page).last.get_by_role("button", name="Previous version").click()
    expect(ai_messages(page)).to_have_count(1)
    expect(ai_messages(page).last.locator(".version-count")).to_have_text("1/2")
    expect(ai_messages(page).last.locator(".msg-text")).to_have_text(stopped_text)
    expect(ai_messages(page).last.get_by_text("Stopped")).to_be_visible()
    page.reload()
    expect(ai_messages(page).last.locator(".version-count")).to_have_text("1/2")
    expect(ai_messages(page).last.locator(".msg-text")).to_have_text(stopped_text)
    ai_messages(page).last.get_by_role("button", name="Next version").click()
    expect(ai_messages(page).last.locator(".version-count")).to_have_text("2/2")
    expect(ai_messages(page).last.locator(".msg-text")).to_have_text("好的，我们重新开始吧。")

    assert console.errors == []


def test_edit_a_message_and_switch_between_versions(web, web_user, llm) -> None:
    page, console = web
    llm.reply_text(["第一个回答。"])
    llm.reply_text(["第二个回答。"])

    sign_in(page)
    start_tutor_conversation(page)
    send(page, "사과 주세요.")
    expect(ai_messages(page).last.locator(".msg-text")).to_have_text("第一个回答。")

    # Edit in place: the form replaces the bubble; saving sends the new version.
    human = page.locator("#messages .msg-human").last
    human.get_by_role("button", name="Edit this message").click()
    editor = page.get_by_label("Edit your message")
    expect(editor).to_have_value("사과 주세요.")
    editor.fill("배 주세요.")
    page.get_by_role("button", name="Save and send").click()

    expect(ai_messages(page)).to_have_count(1)
    expect(ai_messages(page).last.locator(".msg-text")).to_have_text("第二个回答。")
    human = page.locator("#messages .msg-human")
    expect(human).to_have_count(1)
    expect(human.locator(".msg-text")).to_have_text("배 주세요.")
    expect(human.locator(".version-count")).to_have_text("2/2")
    # The model answered the edited text, with no trace of the first version.
    sent = [m["content"] for m in llm.requests[-1].body["messages"] if m["role"] == "user"]
    assert sent[-1] == "배 주세요." and "사과 주세요." not in sent

    # The first version and its reply are kept.
    human.get_by_role("button", name="Previous version").click()
    expect(human.locator(".version-count")).to_have_text("1/2")
    expect(human.locator(".msg-text")).to_have_text("사과 주세요.")
    expect(ai_messages(page).last.locator(".msg-text")).to_have_text("第一个回答。")

    # Cancel leaves the message as it was.
    human.get_by_role("button", name="Edit this message").click()
    page.get_by_label("Edit your message").fill("무엇이든")
    page.get_by_role("button", name="Cancel").click()
    expect(human.locator(".msg-text")).to_have_text("사과 주세요.")
    expect(page.get_by_label("Edit your message")).to_have_count(0)

    assert console.errors == []


def test_wrong_password_and_sign_out(web, web_user) -> None:
    page, console = web
    page.goto("/")
    page.get_by_label("Username").fill("hana")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    sign_in(page)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("localStorage.getItem('confab.auth')") is None
    # A reload stays signed out.
    page.reload()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # The wrong-password attempt logged a failed request (400/401) on purpose.
    assert all("Failed to load resource" in error for error in console.errors)


def long_conversation(user):
    """A conversation of 79 stored messages, the newest ones a tool round (a table, a file)."""
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    from conversations.models import Agent
    from conversations.services import append_message, create_conversation

    conversation = create_conversation(
        user=user, agent=Agent.objects.get(slug="assistant"), context={}, title="긴 대화"
    )
    for i in range(1, 76):
        message = HumanMessage(f"질문 {i}") if i % 2 else AIMessage(f"답변 {i}")
        append_message(conversation=conversation, message=message)
    call = {"name": "multiplication_table", "args": {"number": 7, "up_to": 3}, "id": "call_1"}
    append_message(conversation=conversation, message=AIMessage("", tool_calls=[call]))
    records = [{"factor": i, "number": 7, "product": 7 * i} for i in range(1, 4)]
    append_message(
        conversation=conversation,
        message=ToolMessage(
            content=str(records),
            tool_call_id="call_1",
            name="multiplication_table",
            artifact={
                "kind": "table",
                "columns": ["factor", "number", "product"],
                "records": records,
            },
        ),
    )
    append_message(
        conversation=conversation,
        message=ToolMessage(
            content="chart.svg",
            tool_call_id="call_2",
            name="bar_chart",
            artifact={
                "kind": "file",
                "name": "chart.svg",
                "url": "/media/tool-outputs/ab/chart.svg",
                "mime_type": "image/svg+xml",
                "size": 2048,
            },
        ),
    )
    append_message(conversation=conversation, message=AIMessage("7단 표입니다."))
    return conversation


def test_history_pages_on_scroll_and_tools_render(web, web_user) -> None:
    page, console = web
    conversation = off_loop(long_conversation, web_user)
    sign_in(page)
    page.locator("#conversation-list .conversation-item", has_text="긴 대화").click()
    expect(page).to_have_url(f"{page.url.split('#')[0]}#/c/{conversation.pk}")
    messages = page.locator("#messages .msg")

    # The newest page: 30 messages, the tool round rendered compactly.
    expect(messages).to_have_count(30)
    expect(messages.last.locator(".msg-text")).to_have_text("7단 표입니다.")
    table = page.locator("#messages .msg-tool table")
    expect(table.locator("th")).to_have_text(["factor", "number", "product"])
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table.locator("tbody tr").last.locator("td").last).to_have_text("21")
    link = page.get_by_role("link", name="chart.svg")
    expect(link).to_have_attribute("href", re.compile(r"/media/tool-outputs/ab/chart\.svg$"))
    expect(page.locator("#messages .tool-calls")).to_contain_text("multiplication_table")

    # Scrolling to the top loads the previous page and keeps the reader's place.
    scroller = page.locator("#message-scroller")
    anchor_id = messages.first.get_attribute("data-id")
    offset_js = (
        "el => el.getBoundingClientRect().top"
        " - el.closest('#message-scroller').getBoundingClientRect().top"
    )
    anchor = page.locator(f'#messages .msg[data-id="{anchor_id}"]')
    scroller.evaluate("el => { el.scrollTop = 0; }")
    expect(messages).to_have_count(60)
    # The message that was on top is still on top (not pushed down by the older page).
    assert abs(anchor.evaluate(offset_js) - 40) < 60
    assert scroller.evaluate("el => el.scrollTop") > 500
    scroller.evaluate("el => { el.scrollTop = 0; }")
    expect(messages).to_have_count(79)
    expect(page.locator("#history-status")).to_have_text("Beginning of the conversation")
    expect(messages.first.locator(".msg-text")).to_have_text("질문 1")
    assert console.errors == []


def test_conversation_actions(web, web_user) -> None:
    page, console = web
    from conversations.models import Agent
    from conversations.services import create_conversation

    tutor = Agent.objects.get(slug="language-tutor")
    off_loop(create_conversation, user=web_user, agent=tutor, context={}, title="스페인어 연습")
    off_loop(
        create_conversation,
        user=web_user,
        agent=tutor,
        context={"언어": "일본어"},
        title="일본어 연습",
    )
    sign_in(page)
    items = page.locator("#conversation-list .conversation-item")
    expect(items).to_have_count(2)

    # Search narrows the list.
    page.get_by_label("Search conversations").fill("일본어")
    expect(items).to_have_count(1)
    page.get_by_label("Search conversations").fill("")
    expect(items).to_have_count(2)

    items.filter(has_text="스페인어 연습").click()
    menu = page.get_by_role("button", name="Conversation actions")

    # Rename and change the context.
    menu.click()
    page.get_by_role("menuitem", name="Rename and edit context").click()
    dialog = page.get_by_role("dialog", name="Edit conversation")
    dialog.get_by_label("Title").fill("Español")
    dialog.get_by_label("언어").fill("스페인어")
    dialog.get_by_label("레벨").fill("중급")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#chat-title")).to_have_text("Español")
    expect(page.locator("#chat-subtitle")).to_contain_text("언어: 스페인어")
    expect(page.locator("#chat-subtitle")).to_contain_text("레벨: 중급")
    expect(items.filter(has_text="Español")).to_have_count(1)

    # Archive: it leaves the active list and shows under Archived; unarchive brings it back.
    menu.click()
    page.get_by_role("menuitem", name="Archive").click()
    expect(items).to_have_count(1)
    page.get_by_role("button", name="Archived").click()
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("Español")
    menu.click()
    page.get_by_role("menuitem", name="Unarchive").click()
    expect(items).to_have_count(0)
    page.get_by_role("button", name="Active").click()
    expect(items).to_have_count(2)

    # Delete, after confirming.
    menu.click()
    page.get_by_role("menuitem", name="Delete").click()
    page.get_by_role("dialog", name="Delete this conversation?").get_by_role(
        "button", name="Delete"
    ).click()
    expect(items).to_have_count(1)
    expect(page.get_by_role("heading", name="No conversation open")).to_be_visible()
    assert console.errors == []


def test_register_and_expired_session(web, transactional_db) -> None:
    page, console = web
    page.goto("/")
    page.get_by_role("button", name="Create an account").click()
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    page.get_by_label("Username").fill("민지")
    page.get_by_label("Password").fill("a-long-enough-password-7")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#user-name")).to_have_text("민지")
    assert get_user_model().objects.filter(username="민지").exists()

    # A token the server no longer accepts sends the user back to the sign-in form.
    page.evaluate("localStorage.setItem('confab.auth', JSON.stringify({token: 'revoked'}))")
    page.reload()
    expect(page.get_by_role("alert")).to_have_text("Your session has ended. Please sign in again.")
    assert page.evaluate("localStorage.getItem('confab.auth')") is None
    # Only the refused requests themselves are logged (401s).
    assert all("401" in error for error in console.errors), console.errors


DELTA_RULES_JS = """async () => {
  const m = await import("/web/messages.js");
  const ai = (status, text) => m.normalizeMessage({id: 1, role: "AI", status, text});
  const msg = ai("STREAMING", "😀가");
  const out = [];
  out.push(m.applyDelta(msg, 2, "나"), msg.text);    // offsets count code points, not UTF-16
  out.push(m.applyDelta(msg, 0, "😀가"), msg.text);  // already held: skipped
  out.push(m.applyDelta(msg, 2, "나다"), msg.text);  // overlap: only the new tail
  out.push(m.applyDelta(msg, 9, "?"), msg.text);     // gap: left for the snapshot
  const done = m.mergeMessage(msg, ai("COMPLETE", "😀가나다라"));
  const stale = m.mergeMessage(done, ai("STREAMING", "😀"));
  out.push(done.text, stale.status, stale.text);
  out.push(m.mergeMessage(msg, ai("STREAMING", "😀")).text);  // shorter snapshot mid-stream
  return out;
}"""


def test_delta_and_snapshot_rules(web) -> None:
    """The client's merge rules, run in the browser on the served module."""
    page, console = web
    page.goto("/")
    assert page.evaluate(DELTA_RULES_JS) == [
        True,
        "😀가나",
        False,
        "😀가나",
        True,
        "😀가나다",
        False,
        "😀가나다",
        "😀가나다라",
        "complete",
        "😀가나다라",
        "😀가나다",
    ]
    assert console.errors == []


def test_second_tab_joins_a_running_reply(web, web_user, llm) -> None:
    """A tab opened mid-reply shows the stored partial text, then follows it live."""
    page, console = web
    deltas = [f"第{i}句。" for i in range(1, 31)]
    llm.reply_text(deltas, chunk_delay=0.2)
    sign_in(page)
    start_tutor_conversation(page)
    send(page, "같이 봐요.")
    expect(ai_messages(page).last.locator(".msg-text")).to_contain_text("第5句。")

    other = page.context.new_page()
    other_console = ConsoleWatcher(other)
    other.goto(page.url)
    reply = ai_messages(other).last
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(reply.locator(".msg-text")).to_contain_text("第20句。")
    assert reply.get_attribute("data-status") == "streaming"
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator(".msg-text")).to_have_text("".join(deltas))
    expect(ai_messages(page).last.locator(".msg-text")).to_have_text("".join(deltas))
    assert console.errors == [] and other_console.errors == []


# ---------------------------------------------------------------- the live connection


@dataclass
class RecordedSocket:
    socket: WebSocket
    sent: list[dict[str, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)

    def acknowledged(self) -> bool:
        return any(frame["type"] == "connection_ack" for frame in self.received)


class SocketLog:
    """The page's websockets in the order opened, with the frames each sent and received
    (as the browser saw them, so what the client library really did)."""

    def __init__(self, page: Page) -> None:
        self.sockets: list[RecordedSocket] = []
        page.on("websocket", self._on_socket)

    def _on_socket(self, socket: WebSocket) -> None:
        recorded = RecordedSocket(socket)
        self.sockets.append(recorded)
        socket.on("framesent", lambda payload: recorded.sent.append(json.loads(payload)))
        socket.on("framereceived", lambda payload: recorded.received.append(json.loads(payload)))

    def subscribed(self, index: int) -> list[str]:
        """The root fields the `index`th socket subscribed to, in order."""
        queries = [
            f["payload"]["query"] for f in self.sockets[index].sent if f["type"] == "subscribe"
        ]
        return [re.search(r"\{\s*(\w+)", query).group(1) for query in queries]

    def assert_opened_like_a_client_of(self, index: int, token: str) -> None:
        """The socket authenticated with the token in connection_init and then subscribed
        to the conversation list and the open conversation's events."""
        sent = self.sockets[index].sent
        assert sent[0] == {
            "type": "connection_init",
            "payload": {"authorization": f"Bearer {token}"},
        }
        assert sorted(self.subscribed(index)) == ["conversationEvents", "conversationsChanged"]


def wait_until(page: Page, condition, timeout: float = 15.0) -> None:
    """Poll `condition` (over what Playwright's events recorded) while the page runs."""
    for _ in range(int(timeout * 10)):
        if condition():
            return
        page.wait_for_timeout(100)
    assert condition(), "timed out"


def page_token(page: Page) -> str:
    return page.evaluate("JSON.parse(localStorage.getItem('confab.auth')).token")


def open_conversation_id(page: Page) -> str:
    return page.url.split("#/c/")[1]


def only_connection_errors(errors: list[str]) -> bool:
    """While a server is down the browser logs the refused connections, nothing else."""
    return all(
        "WebSocket connection to" in error or "Failed to load resource" in error for error in errors
    )


@pytest.fixture
def proxy(server) -> Iterator[TcpProxy]:
    """A TCP proxy in front of the live server: the browser's way in."""
    proxy = TcpProxy(server.port)
    yield proxy
    proxy.close()


@pytest.fixture
def proxied(browser: Browser, proxy: TcpProxy) -> Iterator[tuple[Page, ConsoleWatcher, SocketLog]]:
    """A fresh page reaching the live server through the proxy: (page, console, sockets)."""
    page, watcher = new_page(browser, proxy.url)
    sockets = SocketLog(page)
    yield page, watcher, sockets
    page.context.close()


def test_server_restart_mid_conversation(
    proxied, proxy, server, live_server_factory, web_user, llm
) -> None:
    """The server goes away and comes back (a deploy): the app says it is reconnecting,
    reconnects by itself with the same token, subscribes to both streams again, shows
    what happened meanwhile, and follows the conversation live again."""
    page, console, sockets = proxied
    llm.reply_text(REPLY_DELTAS, chunk_delay=0.05)
    sign_in(page)
    start_tutor_conversation(page)
    send(page, HUMAN_TEXT)
    expect(ai_messages(page).last.locator(".msg-text")).to_have_text(REPLY_TEXT)
    token, conversation_id = page_token(page), open_conversation_id(page)
    assert len(sockets.sockets) == 1
    sockets.assert_opened_like_a_client_of(0, token)

    server.stop()
    expect(page.locator("#connection")).to_have_text("Reconnecting…")
    restarted = live_server_factory(extra_env=SERVER_ENV)
    # Meanwhile, on another device: a turn in the open conversation and a new conversation.
    away_deltas = ["你不在的时候，", "我回答了。"]
    llm.reply_text(away_deltas, chunk_delay=0.05)
    api = httpx.Client(
        base_url=restarted.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    messages_url = f"/api/v1/conversations/{conversation_id}/messages/"
    away = api.post(messages_url, json={"content": "다른 기기에서 보냈어요."})
    assert away.status_code == 201, away.text
    created = api.post("/api/v1/conversations/", json={"agent": "assistant", "title": "다른 기기"})
    assert created.status_code == 201, created.text
    proxy.upstream_port = restarted.port

    # Back by itself (backoff: no reload, no user action).
    expect(page.locator("#connection")).to_be_hidden(timeout=45_000)
    expect(page.locator("#messages .msg-human .msg-text")).to_have_text(
        [HUMAN_TEXT, "다른 기기에서 보냈어요."]
    )
    expect(ai_messages(page).locator(".msg-text")).to_have_text([REPLY_TEXT, "".join(away_deltas)])
    items = page.locator("#conversation-list .conversation-item")
    expect(items.filter(has_text="다른 기기")).to_have_count(1)
    sockets.assert_opened_like_a_client_of(len(sockets.sockets) - 1, token)

    # Live again: a turn started on another device streams into the page.
    llm.reply_text(SECOND_DELTAS, chunk_delay=0.3)
    with ThreadPoolExecutor(max_workers=1) as pool:
        posted = pool.submit(api.post, messages_url, json={"content": SECOND_TEXT})
        reply = ai_messages(page).nth(2)
        expect(reply).to_have_attribute("data-status", "streaming")
        expect(reply).to_have_attribute("data-status", "complete")
        expect(reply.locator(".msg-text")).to_have_text("".join(SECOND_DELTAS))
        assert posted.result().status_code == 201
    api.close()
    assert only_connection_errors(console.errors), console.errors


def test_socket_dropped_mid_reply(proxied, proxy, web_user, llm) -> None:
    """The connection drops while a reply streams (a network change): the app reconnects,
    subscribes again, and the reply ends whole: no text missing, none doubled."""
    page, console, sockets = proxied
    deltas = [f"第{i}句。" for i in range(1, 41)]
    llm.reply_text(deltas, chunk_delay=0.2)
    sign_in(page)
    start_tutor_conversation(page)
    send(page, "끊겨도 괜찮아요?")
    reply = ai_messages(page).last
    expect(reply.locator(".msg-text")).to_contain_text("第5句。")

    proxy.drop()
    expect(reply).to_have_attribute("data-status", "complete", timeout=30_000)
    expect(reply.locator(".msg-text")).to_have_text("".join(deltas))
    assert len(sockets.sockets) == 2
    sockets.assert_opened_like_a_client_of(1, page_token(page))
    # The new socket carried the rest of the reply live.
    kinds = [
        frame["payload"]["data"]["conversationEvents"]["__typename"]
        for frame in sockets.sockets[1].received
        if frame["type"] == "next" and "conversationEvents" in frame["payload"]["data"]
    ]
    assert "MessageDelta" in kinds and "MessageCompleted" in kinds, kinds
    assert only_connection_errors(console.errors), console.errors


def test_dead_connection_is_found_by_ping(proxied, proxy, web_user, llm) -> None:
    """A connection that dies silently (no FIN, no RST: a laptop that slept) is noticed by
    the keepalive: a ping every 25 s, a new connection when its pong is 10 s late."""
    page, console, sockets = proxied
    page.clock.install()
    sign_in(page)
    start_tutor_conversation(page)
    wait_until(page, lambda: len(sockets.subscribed(0)) == 2)
    proxy.freeze_websockets()

    page.clock.fast_forward(26_000)
    wait_until(page, lambda: {"type": "ping"} in sockets.sockets[0].sent)
    assert len(sockets.sockets) == 1
    page.clock.fast_forward(11_000)
    wait_until(page, lambda: len(sockets.sockets) == 2 and len(sockets.subscribed(1)) == 2)
    expect(page.locator("#connection")).to_be_hidden()
    sockets.assert_opened_like_a_client_of(1, page_token(page))

    # The new connection is live.
    llm.reply_text(SECOND_DELTAS, chunk_delay=0.1)
    send(page, SECOND_TEXT)
    expect(ai_messages(page).last.locator(".msg-text")).to_have_text("".join(SECOND_DELTAS))
    assert console.errors == []


def test_refused_socket_is_tried_again(browser, live_server_factory, seed_agents, web_user) -> None:
    """A socket the server refuses with a code graphql-ws gives up on (4429: the user's
    websocket budget is spent) is tried again later, until a slot frees."""
    server = live_server_factory(extra_env={**SERVER_ENV, "CONFAB_WS_MAX_PER_USER": "1"})
    first, first_console = new_page(browser, server.url)
    sign_in(first)  # holds the user's one websocket
    expect(first.locator("#connection")).to_be_hidden()
    second, second_console = new_page(browser, server.url)
    sockets = SocketLog(second)
    second.clock.install()
    sign_in(second)
    expect(second.locator("#connection")).to_have_text("Reconnecting…")
    assert len(sockets.sockets) == 1

    first.context.close()  # frees the slot
    # graphql-ws would stop here; the app subscribes again after 8-16 s, then up to 30 s
    # (a try may still find the slot taken while the server sees the first tab go).
    for _ in range(3):
        tries = len(sockets.sockets)
        second.clock.fast_forward(31_000)
        wait_until(second, lambda tries=tries: len(sockets.sockets) > tries)
        latest = sockets.sockets[-1]
        wait_until(second, lambda s=latest: s.acknowledged() or s.socket.is_closed())
        if latest.acknowledged():
            break
    expect(second.locator("#connection")).to_be_hidden()
    sent = sockets.sockets[-1].sent
    assert [frame["type"] for frame in sent[:2]] == ["connection_init", "subscribe"]
    assert sockets.subscribed(len(sockets.sockets) - 1) == ["conversationsChanged"]

    # Live: a conversation created on another device appears.
    api = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {page_token(second)}"}, timeout=60
    )
    created = api.post(
        "/api/v1/conversations/", json={"agent": "assistant", "title": "이제 연결됨"}
    )
    assert created.status_code == 201, created.text
    api.close()
    expect(second.locator("#conversation-list .conversation-item")).to_have_text(
        re.compile("이제 연결됨")
    )
    assert first_console.errors == []
    assert only_connection_errors(second_console.errors), second_console.errors
    second.context.close()


def test_a_reply_that_ends_in_a_hidden_tab_shows_a_notification(
    browser, server, web_user, llm
) -> None:
    context = browser.new_context(
        viewport=DESKTOP, base_url=server.url, permissions=["notifications"]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    console = ConsoleWatcher(page)
    llm.reply_text(["你好！"])
    llm.reply_text(["你好！", "咖啡来了。"], chunk_delay=0.2)
    sign_in(page)
    # Permission is already granted here: nothing to ask, the service worker is set up.
    expect(page.locator("#notify-enable")).to_be_hidden()
    start_tutor_conversation(page)
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")

    def notifications() -> list[dict]:
        return page.evaluate(
            "navigator.serviceWorker.ready.then(r => r.getNotifications())"
            ".then(ns => ns.map(n => ({title: n.title, body: n.body, tag: n.tag})))"
        )

    # While the tab is visible, a reply shows no notification ...
    send(page, "안녕하세요")
    expect(ai_messages(page).last).to_have_attribute("data-status", "complete")
    assert notifications() == []
    # ... after the user switched away, the next one does.
    page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {get: () => 'hidden'});"
        "document.dispatchEvent(new Event('visibilitychange'));"
    )
    send(page, "커피 주세요")
    expect(ai_messages(page)).to_have_count(2)
    expect(ai_messages(page).last).to_have_attribute("data-status", "complete")
    wait_until(page, lambda: len(notifications()) > 0)
    (shown,) = notifications()
    assert shown["body"] == "你好！咖啡来了。"
    assert shown["tag"] == f"conversation-{open_conversation_id(page)}"
    assert shown["title"]
    assert console.errors == []
    context.close()


def _png(color: tuple[int, int, int], size: tuple[int, int] = (320, 200)) -> bytes:
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(image)
    draw.ellipse((size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4), fill="white")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


IMAGE_TEXT = "이 사진에 뭐가 있어요?"
IMAGE_REPLY = ["一个白色的圆。", "背景是蓝色的。"]


def test_attach_paste_and_show_images(web, web_user, llm) -> None:
    """Attach button and paste, thumbnails before sending, the images in the history
    through their signed URLs (after a reload too), a file chip; desktop and phone
    screenshots with an image in the conversation."""
    page, console = web
    llm.reply_text(IMAGE_REPLY, usage=(900, 12))
    sign_in(page)
    start_tutor_conversation(page)

    # The attach button's file input: an image and a Markdown file.
    page.set_input_files(
        "#attach-input",
        files=[
            {"name": "circle.png", "mimeType": "image/png", "buffer": _png((40, 90, 200))},
            {"name": "notes.md", "mimeType": "text/markdown", "buffer": b"# Menu\n- latte\n"},
        ],
    )
    pending = page.locator("#composer-files .composer-file")
    expect(pending).to_have_count(2)
    expect(pending.first.locator("img")).to_be_visible()
    # A pasted image joins them (what a screenshot paste delivers).
    page.get_by_label("Message", exact=True).evaluate(
        """(box, bytes) => {
            const file = new File([new Uint8Array(bytes)], "pasted.png", {type: "image/png"});
            const data = new DataTransfer();
            data.items.add(file);
            box.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true}));
        }""",
        list(_png((200, 60, 60), (160, 100))),
    )
    expect(pending).to_have_count(3)
    # Remove the Markdown file again, then send.
    page.get_by_role("button", name="Remove notes.md").click()
    expect(pending).to_have_count(2)
    send(page, IMAGE_TEXT)

    human = page.locator("#messages .msg-human")
    expect(human).to_have_count(1)
    images = human.locator(".attachment-image img")
    expect(images).to_have_count(2)
    expect(images.first).to_have_attribute("src", re.compile(r"/api/v1/files/signed/"))
    expect(pending).to_have_count(0)
    reply = ai_messages(page).last
    expect(reply).to_have_attribute("data-status", "complete")
    expect(reply.locator(".msg-text")).to_have_text("".join(IMAGE_REPLY))
    # The model got both images, inline.
    user_content = [m for m in llm.requests[-1].body["messages"] if m["role"] == "user"][-1]
    parts = user_content["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "image_url"], parts
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")

    # After a reload the images come from the history, through signed URLs, loaded.
    page.reload()
    images = page.locator("#messages .msg-human .attachment-image img")
    expect(images).to_have_count(2)
    for index in range(2):
        images.nth(index).scroll_into_view_if_needed()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=images.nth(index).element_handle()
        )
    assert images.first.evaluate("img => img.naturalWidth") == 320

    # A text file is a chip.
    llm.reply_text(["好的。"])
    page.set_input_files(
        "#attach-input",
        files=[{"name": "menu.md", "mimeType": "text/markdown", "buffer": b"# Menu\n- latte\n"}],
    )
    send(page, "메뉴예요.")
    chip = page.locator("#messages .msg-human .attachment-chip")
    expect(chip).to_have_count(1)
    expect(chip.get_by_role("link", name="menu.md")).to_have_attribute(
        "href", re.compile(r"/api/v1/files/signed/")
    )
    expect(ai_messages(page).last).to_have_attribute("data-status", "complete")
    assert "- latte" in json.dumps(llm.requests[-1].body["messages"][-1], ensure_ascii=False)

    shots = screenshot_dir()
    shots.mkdir(parents=True, exist_ok=True)
    page.locator("#messages .msg-human").first.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "desktop-attachments.png"))
    page.set_viewport_size(PHONE)
    page.locator("#messages .msg-human").first.scroll_into_view_if_needed()
    expect(page.locator("#messages .msg-human .attachment-image img").first).to_be_visible()
    page.screenshot(path=str(shots / "phone-attachments.png"))
    assert console.errors == []


def test_the_model_picker_changes_the_conversations_model(web, web_user, llm, seed_models) -> None:
    """The header's model select: the registry's models, the conversation's selected;
    a change is used by the next turn and kept across a reload."""
    page, console = web
    sign_in(page)
    start_tutor_conversation(page)

    picker = page.get_by_label("Model", exact=True)
    expect(picker).to_be_visible()
    # The tutor's model, with the registry's labels.
    expect(picker).to_have_value("gpt-4o")
    expect(picker.locator("option", has_text="Claude Haiku 4.5")).to_have_count(1)

    picker.select_option("gpt-4o-mini")
    # The change is saved before the next message is sent (the app announces it then):
    # sending at once raced the mutation on a loaded machine.
    expect(page.locator("#announcer")).to_have_text("Model: gpt-4o-mini")
    expect(page.locator("#toast")).not_to_contain_text("Could not")

    llm.reply_text(["Mini ", "model ", "here."])
    send(page, "Which model are you?")
    expect(ai_messages(page).last).to_have_attribute("data-status", "complete")
    assert llm.requests[-1].body["model"] == "gpt-4o-mini"

    page.reload()
    expect(page.get_by_label("Model", exact=True)).to_have_value("gpt-4o-mini")
    shots = screenshot_dir()
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "model-picker.png"))
    assert console.errors == []


def two_conversations(user):
    """「커피 주문」 (a reply to rate) and then 「여행 계획」, whose text is hostile HTML."""
    from langchain_core.messages import AIMessage, HumanMessage

    from conversations.models import Agent
    from conversations.services import append_message, create_conversation

    assistant = Agent.objects.get(slug="assistant")
    coffee = create_conversation(user=user, agent=assistant, context={}, title="커피 주문")
    append_message(conversation=coffee, message=HumanMessage("아이스 아메리카노 한 잔 주세요"))
    reply = append_message(conversation=coffee, message=AIMessage("네, 아메리카노 한 잔입니다."))
    trip = create_conversation(user=user, agent=assistant, context={}, title="여행 계획")
    append_message(
        conversation=trip,
        message=HumanMessage('부산 <img src=x onerror="window.__pwned=1"> 여행 <b>일정</b>'),
    )
    return coffee, trip, reply


def test_projects_pins_and_search_in_messages(web, web_user) -> None:
    from conversations.models import Conversation

    page, console = web
    _, trip, _ = off_loop(two_conversations, web_user)
    sign_in(page)
    items = page.locator("#conversation-list .conversation-item")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("여행 계획")  # the newest activity first

    # Pin the older one: it goes first, with a pin, also after a reload (the server's order).
    items.filter(has_text="커피 주문").click()
    page.get_by_role("button", name="Conversation actions").click()
    page.get_by_role("menuitem", name="Pin", exact=True).click()
    expect(items.first).to_contain_text("커피 주문")
    expect(items.first.get_by_label("Pinned")).to_be_visible()
    page.reload()
    expect(items.first).to_contain_text("커피 주문")
    page.get_by_role("button", name="Conversation actions").click()
    expect(page.get_by_role("menuitem", name="Unpin")).to_be_visible()
    page.keyboard.press("Escape")

    # A new project: the list shows its (no) conversations.
    page.get_by_role("button", name="New project").click()
    dialog = page.get_by_role("dialog", name="New project")
    dialog.get_by_label("Name").fill("여행")
    dialog.get_by_label("Instructions").fill("Answer in Korean.")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_label("Filter by project")).to_have_value(re.compile(r"^\d+$"))
    expect(items).to_have_count(0)

    # Move 「여행 계획」 into it; the filters split the list.
    page.get_by_label("Filter by project").select_option(label="All projects")
    expect(items).to_have_count(2)
    items.filter(has_text="여행 계획").click()
    page.get_by_role("button", name="Conversation actions").click()
    page.get_by_role("menuitem", name="Move to project").click()
    move = page.get_by_role("dialog", name="Move to project")
    move.get_by_label("Project").select_option(label="여행")
    move.get_by_role("button", name="Move").click()
    expect(move).to_be_hidden()
    wait_until(
        page, lambda: off_loop(lambda: Conversation.objects.get(pk=trip.pk).project_id) is not None
    )
    assert off_loop(lambda: Conversation.objects.get(pk=trip.pk).project.name) == "여행"
    page.get_by_label("Filter by project").select_option(label="여행")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("여행 계획")
    page.get_by_label("Filter by project").select_option(label="No project")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("커피 주문")
    page.get_by_label("Filter by project").select_option(label="All projects")

    # Search finds words inside messages, highlighted; the hostile text stays text.
    search = page.get_by_label("Search conversations")
    results = page.locator("#message-result-list .message-result")
    search.fill("아메리카노")
    expect(results).to_have_count(2)
    expect(results.first.locator("mark").first).to_have_text("아메리카노")
    expect(results.first).to_contain_text("커피 주문")
    search.fill("부산")
    expect(results).to_have_count(1)
    expect(results.first.locator(".message-snippet")).to_contain_text("<img src=x")
    assert results.first.locator("img, b").count() == 0
    assert page.evaluate("window.__pwned") is None
    results.first.click()
    expect(page).to_have_url(re.compile(rf"#/c/{trip.pk}$"))
    expect(page.locator("#chat-title")).to_have_text("여행 계획")
    search.fill("없는단어")
    expect(page.get_by_text("No messages match.")).to_be_visible()
    assert console.errors == []


def test_rate_a_reply_with_a_comment(web, web_user) -> None:
    from conversations.feedback.models import MessageFeedback

    page, console = web
    _, _, reply = off_loop(two_conversations, web_user)

    def stored() -> tuple[str, str] | None:
        row = MessageFeedback.objects.filter(message_id=reply.pk, user=web_user).first()
        return (row.rating, row.comment) if row else None

    sign_in(page)
    page.locator("#conversation-list .conversation-item", has_text="커피 주문").click()
    answer = page.locator(f'#messages .msg-ai[data-id="{reply.pk}"]')
    expect(answer).to_be_visible()
    # Only replies are rated.
    assert page.locator("#messages .msg-human .feedback").count() == 0

    good = answer.get_by_role("button", name="Good reply")
    bad = answer.get_by_role("button", name="Bad reply")
    good.click()
    expect(good).to_have_attribute("aria-pressed", "true")
    wait_until(page, lambda: off_loop(stored) == ("up", ""))

    answer.get_by_role("button", name="Add a comment").click()
    dialog = page.get_by_role("dialog", name="Comment on this reply")
    dialog.get_by_label("Comment").fill("정확해요")
    dialog.get_by_role("button", name="Save").click()
    expect(answer.get_by_role("button", name="Edit comment")).to_be_visible()
    assert off_loop(stored) == ("up", "정확해요")

    # Thumbs down keeps the comment; the rating survives a reload.
    bad.click()
    expect(bad).to_have_attribute("aria-pressed", "true")
    expect(good).to_have_attribute("aria-pressed", "false")
    wait_until(page, lambda: off_loop(stored) == ("down", "정확해요"))
    page.reload()
    expect(answer.get_by_role("button", name="Bad reply")).to_have_attribute("aria-pressed", "true")
    # Pressed again: the rating is gone.
    answer.get_by_role("button", name="Bad reply").click()
    expect(answer.get_by_role("button", name="Bad reply")).to_have_attribute(
        "aria-pressed", "false"
    )
    wait_until(page, lambda: off_loop(stored) is None)
    assert console.errors == []


def test_export_a_conversation_import_it_back_and_export_everything(
    web, web_user, tmp_path
) -> None:
    import zipfile

    from conversations.models import Conversation

    page, console = web
    coffee, _, _ = off_loop(two_conversations, web_user)
    sign_in(page)
    page.locator("#conversation-list .conversation-item", has_text="커피 주문").click()
    menu = page.get_by_role("button", name="Conversation actions")

    menu.click()
    with page.expect_download() as markdown:
        page.get_by_role("menuitem", name="Export as Markdown").click()
    text = markdown.value.path().read_text()
    assert "커피 주문" in text and "아이스 아메리카노 한 잔 주세요" in text
    assert markdown.value.suggested_filename.endswith(".md")

    menu.click()
    with page.expect_download() as exported:
        page.get_by_role("menuitem", name="Export as JSON").click()
    saved = tmp_path / exported.value.suggested_filename
    exported.value.save_as(saved)
    document = json.loads(saved.read_text())
    assert [c["title"] for c in document["conversations"]] == ["커피 주문"]

    # Imported back: a new conversation with the same messages, listed at once.
    page.locator("#import-input").set_input_files(str(saved))
    expect(page.get_by_text("Imported 1 conversation.")).to_be_visible()
    items = page.locator("#conversation-list .conversation-item", has_text="커피 주문")
    expect(items).to_have_count(2)
    copies = off_loop(
        lambda: [
            (c.pk, [m.text for m in c.messages.order_by("id")])
            for c in Conversation.objects.filter(user=web_user, title="커피 주문").order_by("pk")
        ]
    )
    assert len(copies) == 2 and copies[0][0] == coffee.pk
    assert (
        copies[1][1]
        == copies[0][1]
        == ["아이스 아메리카노 한 잔 주세요", "네, 아메리카노 한 잔입니다."]
    )

    # A file that is not an export: a clear message, nothing imported.
    (tmp_path / "notes.json").write_text("not json")
    page.locator("#import-input").set_input_files(str(tmp_path / "notes.json"))
    expect(page.get_by_text("Could not import: This file is not a Confab export")).to_be_visible()

    with page.expect_download() as everything:
        page.get_by_role("button", name="Export all").click()
    with zipfile.ZipFile(everything.value.path()) as archive:
        names = archive.namelist()
    assert sum(name.endswith(".json") and "conversations/" in name for name in names) == 3, names
    assert console.errors == []
