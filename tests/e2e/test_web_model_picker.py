"""The web app's model picker: a conversation's model from the registry, changed in the
header, used by the next turn, kept across a reload (Chromium through Playwright)."""

from __future__ import annotations

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import expect

from tests.e2e.test_web_app import (  # noqa: F401
    SERVER_ENV,
    ai_messages,
    browser,
    screenshot_dir,
    send,
    sign_in,
    start_tutor_conversation,
    web,
    web_user,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def server(browser, live_server_factory, seed_agents, seed_models):  # noqa: F811
    """A live Confab server with the model registry's seed rows."""
    return live_server_factory(extra_env=SERVER_ENV)


def test_the_model_picker_changes_the_conversations_model(web, web_user, llm) -> None:  # noqa: F811
    page, console = web
    sign_in(page)
    start_tutor_conversation(page)

    picker = page.get_by_label("Model", exact=True)
    expect(picker).to_be_visible()
    # The tutor's model, with the registry's labels.
    expect(picker).to_have_value("gpt-4o")
    expect(picker.locator("option", has_text="Claude Haiku 4.5")).to_have_count(1)

    picker.select_option("gpt-4o-mini")
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
