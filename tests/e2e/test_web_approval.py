"""Tool approval in the web app (Chromium via Playwright, a live server, the fake OpenAI
server): a paused reply shows each waiting call's name and arguments with Approve /
Deny; Approve lets the reply go on; after a reload the waiting call is still there, and
Deny sends the model the denial."""

from __future__ import annotations

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import expect

from conversations.services import create_conversation
from tests.support.approvals import guarded_agent
from tests.support.browser import ai_messages, off_loop, send, sign_in
from tests.support.fakeopenai import ToolCall

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def guarded_conversation(user):
    return create_conversation(user=user, agent=guarded_agent(), title="계산")


def test_approve_and_deny_a_tool_call(web, web_user, llm) -> None:
    page, console = web
    off_loop(guarded_conversation, web_user)
    sign_in(page)
    page.locator("#conversation-list .conversation-item", has_text="계산").click()

    llm.reply_tool_calls([ToolCall("calculator", {"expression": "6*7"}, id="call_web1")])
    llm.reply_text(["It is ", "42."])
    send(page, "6 곱하기 7은?")
    reply = ai_messages(page).first
    expect(reply).to_have_attribute("data-status", "awaiting_approval")
    approval = reply.locator(".approval")
    expect(approval.locator(".approval-name")).to_have_text("calculator")
    expect(approval.locator(".approval-args")).to_contain_text('"expression": "6*7"')
    expect(reply.get_by_text("Waiting for your approval")).to_be_visible()
    page.get_by_role("button", name="Approve calculator").click()
    expect(page.locator("#messages .approval")).to_have_count(0)
    expect(ai_messages(page).last.locator(".msg-text")).to_have_text("It is 42.")
    expect(ai_messages(page).last).to_have_attribute("data-status", "complete")
    expect(page.locator("#messages .msg-tool")).to_have_count(1)

    # A second call waits across a reload (the pending call comes from the server).
    llm.reply_tool_calls([ToolCall("calculator", {"expression": "2**10"}, id="call_web2")])
    llm.reply_text(["OK, I will not."])
    send(page, "2의 10제곱은?")
    expect(page.locator("#messages .approval")).to_have_count(1)
    page.reload()
    approval = page.locator("#messages .approval")
    expect(approval).to_have_count(1)
    expect(approval.locator(".approval-args")).to_contain_text("2**10")
    page.get_by_role("button", name="Deny calculator").click()
    expect(ai_messages(page).last.locator(".msg-text")).to_have_text("OK, I will not.")
    expect(page.locator("#messages .approval")).to_have_count(0)
    assert llm.requests[-1].messages[-1]["content"] == "The user denied this tool call."
    assert console.errors == []
