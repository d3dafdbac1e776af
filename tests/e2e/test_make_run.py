"""`make run` on a fresh checkout serves several devices on SQLite.

The server is started by `make run` itself (migrate, the demo user, uvicorn with the
embedded default: SQLite, the in-memory channel layer, the offline demo model), with
nothing set but a fresh database file and a free port. Then:

- concurrent turns on several conversations plus a reader paging history all succeed
  (SQLite's writers wait their turn: WAL, a busy timeout, IMMEDIATE transactions);
- two browser tabs and a websocket client follow one conversation while a turn
  streams, and all three end with the stored reply;
- history pages through REST and in the web app;
- a connection trickling a request head is answered 408 and closed
  (CONFAB_HTTP_HEADER_TIMEOUT, 10 s by default: backend/http_protocol.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, ConsoleWatcher
from tests.support.servers import ROOT, free_port
from tests.support.slow_clients import trickle

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect, sync_playwright

pytestmark = pytest.mark.timeout(300)

# What `make run` must not see: everything that would take it off the embedded default.
NOT_SET = (
    "DATABASE_URL",
    "REDIS_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "CONFAB_LLM_PROVIDER",
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "DEBUG",
)


@dataclass
class MakeRun:
    url: str
    token: str
    process: subprocess.Popen
    log: Path

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def make_run(tmp_path_factory) -> Iterator[MakeRun]:
    workdir = tmp_path_factory.mktemp("make-run")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in NOT_SET}
    # A fresh database file in place of the checkout's db.sqlite3 (the one difference).
    env["DATABASE_URL"] = f"sqlite:///{workdir / 'db.sqlite3'}"
    env["MEDIA_ROOT"] = str(workdir / "media")
    # The tests run more turns a minute than the default per-user budget allows.
    env["CONFAB_THROTTLE_TURNS"] = "1000/min"
    log = workdir / "make-run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-5000:]
            assert time.monotonic() < deadline, "make run did not start"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        token = re.search(r"Bearer token: (\S+)", log.read_text(errors="replace")).group(1)
        yield MakeRun(url=url, token=token, process=process, log=log)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def server_errors(server: MakeRun) -> list[str]:
    """Tracebacks and 5xx answers in the server's log."""
    lines = server.log.read_text(errors="replace").splitlines()
    return [line for line in lines if "Traceback" in line or re.search(r'" 5\d\d\b', line)]


async def new_conversation(client: httpx.AsyncClient, title: str) -> int:
    response = await client.post(
        "/api/v1/conversations/", json={"agent": "assistant", "title": title}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def all_pages(client: httpx.AsyncClient, conversation_id: int, limit: int) -> list[int]:
    """Every message id, oldest first, read newest page first through `before` cursors."""
    path = f"/api/v1/conversations/{conversation_id}/messages/"
    response = await client.get(path, params={"limit": limit})
    assert response.status_code == 200, response.text
    page = response.json()
    ids = [message["id"] for message in page["results"]]
    while page["has_older"]:
        response = await client.get(path, params={"limit": limit, "before": ids[0]})
        assert response.status_code == 200, response.text
        page = response.json()
        ids = [message["id"] for message in page["results"]] + ids
    return ids


async def test_concurrent_turns_and_a_reader_all_succeed(make_run):
    async with httpx.AsyncClient(
        base_url=make_run.url, headers=make_run.headers(), timeout=60
    ) as client:
        conversations = [await new_conversation(client, f"parallel {i}") for i in range(8)]
        reading = await new_conversation(client, "read while others write")
        for i in range(5):
            response = await client.post(
                f"/api/v1/conversations/{reading}/messages/", json={"content": f"seed {i}"}
            )
            assert response.status_code == 201, response.text

        async def turns(conversation_id: int) -> list[int]:
            codes = []
            for round_number in range(3):
                response = await client.post(
                    f"/api/v1/conversations/{conversation_id}/messages/",
                    json={
                        "content": f"round {round_number}",
                        "client_message_id": f"r{round_number}",
                    },
                )
                codes.append(response.status_code)
            return codes

        async def reader(stop: asyncio.Event) -> int:
            pages = 0
            while not stop.is_set():
                assert len(await all_pages(client, reading, limit=3)) == 10
                pages += 4
            return pages

        stop = asyncio.Event()
        read = asyncio.ensure_future(reader(stop))
        results = await asyncio.gather(*(turns(c) for c in conversations))
        stop.set()
        assert await read > 0
        assert results == [[201, 201, 201]] * len(conversations)
        for conversation_id in conversations:
            path = f"/api/v1/conversations/{conversation_id}/messages/"
            messages = (await client.get(path)).json()["results"]
            assert [(m["role"], m["status"]) for m in messages] == [
                ("human", "complete"),
                ("ai", "complete"),
            ] * 3
    assert server_errors(make_run) == []


def test_a_slow_request_head_is_closed(make_run):
    answer = trickle(int(make_run.url.rsplit(":", 1)[1]))
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer


def open_tab(browser, make_run: MakeRun, conversation_id: int) -> tuple[Page, ConsoleWatcher]:
    context = browser.new_context(viewport=DESKTOP, base_url=make_run.url)
    page = context.new_page()
    page.set_default_timeout(20_000)
    watcher = ConsoleWatcher(page)
    page.goto("/")
    page.get_by_label("Username").fill("demo")
    page.get_by_label("Password").fill("demo-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="New conversation").first).to_be_visible()
    page.goto(f"/#/c/{conversation_id}")
    expect(page.locator("#chat-title")).to_have_text("Two tabs and a socket")
    return page, watcher


def follow_socket(make_run: MakeRun, conversation_id: int, frames: list[dict]) -> None:
    """A websocket client on the conversation: collects frames until the reply completes."""

    async def run() -> None:
        url = f"{make_run.ws_url}/ws/conversations/{conversation_id}/?token={make_run.token}"
        async with websockets.connect(url) as socket:
            while True:
                frame = json.loads(await asyncio.wait_for(socket.recv(), 60))
                frames.append(frame)
                if frame["type"] == "message.completed" and frame["message"]["role"] == "ai":
                    return

    asyncio.run(run())


def test_two_tabs_and_a_socket_follow_one_turn_then_history_pages(make_run):
    executable = shutil.which(CHROMIUM) or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if executable is None:
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    client = httpx.Client(base_url=make_run.url, headers=make_run.headers(), timeout=60)
    conversation_id = client.post(
        "/api/v1/conversations/", json={"agent": "assistant", "title": "Two tabs and a socket"}
    ).json()["id"]
    # History to page through: 24 short turns (48 messages) before the live one.
    for i in range(24):
        response = client.post(
            f"/api/v1/conversations/{conversation_id}/messages/", json={"content": f"earlier {i}"}
        )
        assert response.status_code == 201, response.text

    from concurrent.futures import ThreadPoolExecutor

    with sync_playwright() as playwright, ThreadPoolExecutor(max_workers=1) as pool:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        first, first_console = open_tab(browser, make_run, conversation_id)
        second, second_console = open_tab(browser, make_run, conversation_id)
        frames: list[dict] = []
        socket = pool.submit(follow_socket, make_run, conversation_id, frames)
        time.sleep(1.0)  # the socket is in (its `ready` frame arrives first)

        # A long message: the demo model echoes it, so the reply streams for seconds.
        words = " ".join(f"word{i}" for i in range(150))
        box = first.get_by_label("Message", exact=True)
        box.fill(words)
        box.press("Enter")
        for page in (first, second):
            reply = page.locator("#messages .msg-ai").last
            expect(reply).to_have_attribute("data-status", "streaming")
        for page in (first, second):
            reply = page.locator("#messages .msg-ai").last
            expect(reply).to_have_attribute("data-status", "complete", timeout=60_000)
            expect(reply.locator(".msg-text")).to_contain_text("word149")
        socket.result(timeout=60)

        stored = client.get(f"/api/v1/conversations/{conversation_id}/messages/").json()
        final = stored["results"][-1]
        assert final["role"] == "ai" and final["status"] == "complete"
        assert frames[0]["type"] == "ready"
        deltas = [f for f in frames if f["type"] == "message.delta"]
        assert len(deltas) > 3, "the socket saw the reply stream"
        assert "".join(d["delta"] for d in deltas) == final["text"]
        assert frames[-1]["message"]["text"] == final["text"]
        for page in (first, second):
            assert page.locator("#messages .msg-ai .msg-text").last.inner_text() == final["text"]

        # History: the web app loads older pages on scroll until the beginning ...
        scroller = first.locator("#message-scroller")
        messages = first.locator("#messages .msg")
        for _ in range(10):
            if first.locator("#history-status").inner_text() == "Beginning of the conversation":
                break
            scroller.evaluate("el => { el.scrollTop = 0; }")
            time.sleep(0.5)
        expect(first.locator("#history-status")).to_have_text("Beginning of the conversation")
        expect(messages).to_have_count(50)
        assert first_console.errors == [] and second_console.errors == []
        browser.close()

    # ... and REST pages every message once, in order, both ways.
    ids = asyncio.run(_rest_pages(make_run, conversation_id))
    assert len(ids) == 50 and ids == sorted(ids)
    newer = client.get(
        f"/api/v1/conversations/{conversation_id}/messages/", params={"after": ids[9], "limit": 5}
    ).json()
    assert [m["id"] for m in newer["results"]] == ids[10:15] and newer["has_newer"]
    client.close()
    assert server_errors(make_run) == []


async def _rest_pages(make_run: MakeRun, conversation_id: int) -> list[int]:
    async with httpx.AsyncClient(base_url=make_run.url, headers=make_run.headers()) as client:
        return await all_pages(client, conversation_id, limit=7)
