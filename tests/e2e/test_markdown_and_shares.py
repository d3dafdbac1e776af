"""Replies as Markdown, and share links, in a real browser (Debian's Chromium) against a
live server whose model is the fake OpenAI server.

- A reply made of hostile Markdown and HTML (`<img onerror>`, `<script>`, SVG with
  `onload`, `javascript:` links in several spellings, an iframe, a style tag) streams
  in through a real turn: nothing runs (no flag set, no dialog, no console error from
  a blocked script), none of those elements exists, no `javascript:` href is left, and
  the Markdown around it renders: a heading, a list, a table, a highlighted code block
  with a working Copy button, a safe link that opens a new tab.
- A share made over REST, a message sent after it: `/s/<token>` opened without signing
  in shows the earlier messages through the same renderer and never the later one;
  revoked, the page and the API answer 404.
"""

from __future__ import annotations

import httpx
import pytest
from django.contrib.auth import get_user_model

pytest.importorskip("playwright")
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.browser import ConsoleWatcher, new_page
from tests.support.tokens import make_token

PASSWORD = "markdown-password-1"
pytestmark = pytest.mark.timeout(180)

# Split so that deltas end inside a table and inside a code fence: each partial text
# is rendered (and sanitized) too.
HOSTILE = [
    "# Result\n\nHere is **bold** and a [safe link](https://example.com/docs).\n\n",
    "- first item\n- second item\n\n| Name | Score |\n|------|",
    "------:|\n| ada | 10 |\n| bob | 7 |\n\n```python\ndef greet(name):\n",
    '    return f"hi {name}"\n```\n\n',
    '<img src=x onerror="window.__pwned=1">\n\n<script>window.__pwned=2</script>\n\n',
    '<svg onload="window.__pwned=3"><circle r="4"/></svg>\n\n',
    "[click me](javascript:window.__pwned=4) [again](JaVaScRiPt:alert(1)) ",
    "[entity](&#106;avascript:alert(1)) <javascript:alert(5)> ",
    '<a href="javascript:alert(6)">raw</a>\n\n',
    '![tracker](https://example.com/t.png" onerror="window.__pwned=7)\n\n',
    '<iframe src="javascript:alert(8)"></iframe><style>body{display:none}</style>\n',
]
DANGEROUS = "script, img, svg, iframe, style, object, embed, form, input, [onerror], [onload]"


@pytest.fixture
def web_user(transactional_db):
    return get_user_model().objects.create_user(username="mina", password=PASSWORD)


def watch_for_scripts(page: Page) -> list[str]:
    """Dialogs the page opens (alert, confirm): each one would be a script that ran."""
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


def assert_inert(page: Page, scope: str, dialogs: list[str], console: ConsoleWatcher) -> None:
    assert page.evaluate("() => window.__pwned") is None
    assert dialogs == []
    assert page.locator(f"{scope} :is({DANGEROUS})").count() == 0
    hrefs = page.locator(f"{scope} a[href]").evaluate_all("els => els.map(e => e.href)")
    assert hrefs and all(href.startswith(("https:", "http:")) for href in hrefs), hrefs
    assert console.errors == []


def assert_markdown(reply: Locator) -> None:
    """The reply's Markdown, rendered: heading, list, table, code, a safe link."""
    text = reply.locator(".msg-text")
    expect(text.locator("h1")).to_have_text("Result")
    expect(text.locator("strong")).to_have_text("bold")
    expect(text.locator("ul > li")).to_have_text(["first item", "second item"])
    expect(text.locator("table th")).to_have_text(["Name", "Score"])
    expect(text.locator("table td")).to_have_text(["ada", "10", "bob", "7"])
    code = text.locator(".code-block pre code")
    expect(code).to_contain_text('return f"hi {name}"')
    expect(code.locator(".hljs-keyword").first).to_have_text("def")
    expect(text.locator(".code-block .code-head")).to_contain_text("python")
    link = text.get_by_role("link", name="safe link")
    expect(link).to_have_attribute("href", "https://example.com/docs")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    # The hostile HTML is on the screen as text, where it does nothing.
    expect(text).to_contain_text("<script>window.__pwned=2</script>")
    expect(text).to_contain_text('<img src=x onerror="window.__pwned=1">')


def test_a_hostile_reply_renders_as_markdown_and_runs_nothing(web, web_user, llm) -> None:
    page, console = web
    dialogs = watch_for_scripts(page)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    llm.reply_text(HOSTILE, chunk_delay=0.15)

    page.goto("/")
    page.get_by_label("Username").fill("mina")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#new-conversation").click()
    page.get_by_role("dialog", name="New conversation").get_by_role("button", name="Start").click()
    box = page.get_by_label("Message", exact=True)
    box.fill("Show me a table, some code and a few links.")
    box.press("Enter")

    reply = page.locator("#messages .msg-ai").last
    # Mid-stream (a partial table or fence) renders without breaking anything.
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(reply.locator(".msg-text ul > li")).to_have_count(2)
    expect(reply).to_have_attribute("data-status", "complete")
    assert_markdown(reply)
    # The human's own message stays plain text.
    human = page.locator("#messages .msg-human .msg-text")
    expect(human).to_have_text("Show me a table, some code and a few links.")

    reply.locator(".copy-code").click()
    expect(reply.locator(".copy-code")).to_have_text("Copied")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == 'def greet(name):\n    return f"hi {name}"\n'

    # After a reload the stored reply renders the same way, and is as inert.
    page.reload()
    expect(reply.locator(".msg-text table td")).to_have_count(4)
    assert_markdown(reply)
    assert_inert(page, "#messages", dialogs, console)

    # The conversation menu's "Share a read-only link" copies the share page's URL.
    page.get_by_role("button", name="Conversation actions").click()
    page.get_by_role("menuitem", name="Share a read-only link").click()
    expect(page.locator("#toast")).to_contain_text("Read-only link copied:")
    url = page.evaluate("() => navigator.clipboard.readText()")
    assert "/s/" in url and url in page.locator("#toast").inner_text()
    reader, reader_console = new_page(page.context.browser, url)
    try:
        assert reader.goto(url).status == 200
        assert_markdown(reader.locator("#messages .msg-ai"))
        assert_inert(reader, "#messages", [], reader_console)
    finally:
        reader.context.close()


def test_a_share_shows_the_snapshot_with_the_same_renderer(
    browser: Browser, server, web_user, llm
) -> None:
    token = make_token(web_user)
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as api:
        conversation = api.post(
            "/api/v1/conversations/", json={"title": "Shared chat", "agent": "language-tutor"}
        ).json()
        messages = f"/api/v1/conversations/{conversation['id']}/messages/"
        llm.reply_text(HOSTILE)
        assert api.post(messages, json={"content": "Give me everything"}).status_code == 201
        share = api.post(f"/api/v1/conversations/{conversation['id']}/shares/").json()
        llm.reply_text(["A later answer nobody outside sees."])
        assert api.post(messages, json={"content": "A later question"}).status_code == 201

        page, console = new_page(browser, server.url)
        dialogs = watch_for_scripts(page)
        try:
            response = page.goto(share["url"])
            assert response is not None and response.status == 200
            assert response.headers["x-robots-tag"].startswith("noindex")
            robots = page.locator('meta[name="robots"]')
            expect(robots).to_have_attribute("content", "noindex, nofollow")
            expect(page.locator("#share-title")).to_have_text("Shared chat")
            expect(page.locator("#messages .msg-human .msg-text")).to_have_text(
                ["Give me everything"]
            )
            expect(page.locator("#messages .msg-ai")).to_have_count(1)
            assert_markdown(page.locator("#messages .msg-ai"))
            expect(page.locator("#share-status")).to_have_text("")
            assert "later" not in page.locator("#messages").inner_text().lower()
            # The reader is not signed in and the page holds no token.
            assert page.evaluate("() => Object.keys(localStorage)") == []
            assert_inert(page, "#messages", dialogs, console)

            revoked = api.delete(
                f"/api/v1/conversations/{conversation['id']}/shares/{share['id']}/"
            )
            assert revoked.status_code == 204
            gone = page.goto(share["url"])
            assert gone is not None and gone.status == 404
            assert api.get(f"/api/v1/shared/{share['token']}/").status_code == 404
        finally:
            page.context.close()
