"""Concurrent streaming benchmark: N live turns at once through 2 uvicorn workers and Redis.

    python -m bench.streaming [--n 100,500,1000] [--surface ws,graphql]
                              [--layer pipelined,pubsub,core] [--flush 0.03,0]
                              [--chunks 50] [--chunk-delay 0.02] [--profile]

Every turn has its own user, conversation and socket. All sockets connect first; then
every client sends its message at once. The fake OpenAI server (bench/fakellm.py, its
own process) streams each reply as `--chunks` chunks whose text is their own number
("007|"), and stamps each chunk with its send time (`x_sent_at`). A client knows which
chunks a `message.delta` completes from its `offset` and length, so each chunk's relay
latency is (client receive time - fake server send time), batching included.

- `ws`: the chat websocket (`/ws/conversations/<id>/`), the turn started by a `message`
  frame;
- `graphql`: graphql-transport-ws on `/graphql/`, `conversationEvents` subscription, the
  turn started by the `sendMessage` mutation on the same socket.

Reported per case: time to first token (message sent -> first delta received), relay
latency per chunk (p50/p95/p99), wall time, server CPU (the uvicorn processes, from
/proc) and that of PostgreSQL, Redis, the fake provider and the client, and the totals
that must hold at every N: every reply complete in the database with the full text, and
zero deltas missing, doubled or out of order on every client.

The baseline row `provider direct` is the same N streams read straight from the fake
server with httpx (no Confab): the floor of relay latency on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    Summary,
    Target,
    active_toggles,
    cpu_seconds,
    ensure_database,
    fmt_ms,
    fmt_ratio,
    print_machine,
    print_targets,
    process_tree,
    rss_mib,
    setup_django,
    start_spy,
    stop_spy,
    table,
)

CHUNK_WIDTH = 4
WARMUP_TURNS = 20
CHUNK_RE = re.compile(r"^(\d{3})\|$")
SEND_MUTATION = """
mutation Send($id: ID!, $content: String!, $cmid: String) {
  sendMessage(conversationId: $id, content: $content, clientMessageId: $cmid) {
    aiMessage { id status }
    errors { field code message }
  }
}
"""
EVENTS_SUBSCRIPTION = """
subscription Events($id: ID!) {
  conversationEvents(conversationId: $id) {
    __typename
    ... on MessageCreated { message { id role } }
    ... on MessageDelta { messageId index offset delta }
    ... on MessageCompleted { message { id role status text } }
    ... on MessageFailed { message { id role status text } error { code } }
  }
}
"""


def chunk_texts(count: int) -> list[str]:
    return [f"{j:03d}|" for j in range(count)]


@dataclass
class Turn:
    """One client's turn and what it observed."""

    index: int
    conversation_id: int
    token: str
    content: str
    expected: str
    sent_at: float = 0.0
    first_delta_at: float = 0.0
    done_at: float = 0.0
    chunk_received: dict[int, float] = field(default_factory=dict)
    received_text: str = ""
    next_index: int = 0
    out_of_order: int = 0
    final_text: str | None = None
    final_status: str | None = None
    error: str | None = None
    refusals: int = 0  # TURN_CAPACITY_REACHED answers retried, as the API asks clients to

    def on_delta(self, index: int, offset: int, delta: str, now: float) -> None:
        if not self.first_delta_at:
            self.first_delta_at = now
        if index != self.next_index or offset != len(self.received_text):
            self.out_of_order += 1
        self.next_index = index + 1
        if offset == len(self.received_text):
            self.received_text += delta
        complete = len(self.received_text) // CHUNK_WIDTH
        for j in range(len(self.chunk_received), complete):
            self.chunk_received[j] = now

    @property
    def missing_chunks(self) -> int:
        return max(0, len(self.expected) // CHUNK_WIDTH - len(self.chunk_received))


# --- data -----------------------------------------------------------------------


def prepare_turns(count: int, chunks: int, prefix: str = "bench-stream") -> list[Turn]:
    """`count` users, each with a token and a fresh conversation (the agent has no
    prompt variables, tools or greeting)."""
    from django.contrib.auth import get_user_model
    from knox.models import get_token_model

    from conversations.models import Agent, Conversation

    user_model = get_user_model()
    agent, _ = Agent.objects.update_or_create(
        slug="bench-stream",
        defaults={
            "name": "Bench streaming",
            "system_prompt_template": "You are a benchmark assistant.",
            "model": "bench-model",
            "temperature": 0.0,
        },
    )
    names = [f"{prefix}-{i}" for i in range(count)]
    existing = set(user_model.objects.filter(username__in=names).values_list("username", flat=True))
    user_model.objects.bulk_create(
        [user_model(username=name, password="!") for name in names if name not in existing]
    )
    users = list(user_model.objects.filter(username__in=names).order_by("id"))
    # Old benchmark conversations (and their messages) go; each run starts clean.
    Conversation.objects.filter(user__in=users).delete()
    get_token_model().objects.filter(user__in=users).delete()
    conversations = Conversation.objects.bulk_create(
        [Conversation(user=user, agent=agent, title="bench stream") for user in users]
    )
    expected = "".join(chunk_texts(chunks))
    run = uuid.uuid4().hex[:8]
    turns = []
    for index, (user, conversation) in enumerate(zip(users, conversations, strict=True)):
        _, token = get_token_model().objects.create(user=user, name="bench-stream")
        turns.append(
            Turn(
                index=index,
                conversation_id=conversation.pk,
                token=token,
                content=f"bench {run} turn {index}",
                expected=expected,
            )
        )
    return turns


def wait_for_turns(turns: list[Turn], timeout: float) -> None:
    """Wait until no reply of these turns is still streaming (clients that gave up early
    do not stop their turns: those go on and are stored)."""
    from conversations.models import ConversationMessage

    ids = [turn.conversation_id for turn in turns]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        streaming = ConversationMessage.objects.filter(
            conversation_id__in=ids, status="streaming"
        ).exists()
        if not streaming:
            return
        time.sleep(0.5)


def check_database(turns: list[Turn]) -> tuple[int, int]:
    """(replies complete with the full text, human messages stored)."""
    from conversations.models import ConversationMessage

    ids = [turn.conversation_id for turn in turns]
    rows = ConversationMessage.objects.filter(conversation_id__in=ids)
    expected = turns[0].expected
    complete = rows.filter(role="ai", status="complete", text=expected).count()
    humans = rows.filter(role="human").count()
    return complete, humans


# --- clients ----------------------------------------------------------------------

# A turn refused for capacity (nothing stored) is sent again after the advertised wait,
# as the API asks clients to; TTFT counts from the first attempt.
CAPACITY_CODE = "TURN_CAPACITY_REACHED"
MAX_CAPACITY_RETRIES = 30


async def retry_refused(turn: Turn, retry_after: Any) -> bool:
    """Wait out a capacity refusal; False once the turn has been refused too often."""
    if turn.refusals >= MAX_CAPACITY_RETRIES:
        return False
    turn.refusals += 1
    await asyncio.sleep(float(retry_after or 1))
    return True


async def run_chat_client(turn: Turn, ws_url: str, start: asyncio.Event, ready: Any) -> None:
    import websockets

    socket = await websockets.connect(
        f"{ws_url}/ws/conversations/{turn.conversation_id}/",
        additional_headers={"Authorization": f"Bearer {turn.token}"},
        compression=None,
        ping_interval=None,
        max_size=None,
        open_timeout=60,
    )
    try:
        frame = json.loads(await socket.recv())
        assert frame["type"] == "ready", frame
        ready()
        await start.wait()
        turn.sent_at = time.time()
        message = json.dumps(
            {"type": "message", "content": turn.content, "client_message_id": "b1"}
        )
        await socket.send(message)
        async for raw in socket:
            now = time.time()
            frame = json.loads(raw)
            kind = frame["type"]
            if kind == "message.delta":
                turn.on_delta(frame["index"], frame["offset"], frame["delta"], now)
            elif kind in ("message.completed", "message.failed"):
                if frame["message"]["role"] == "ai":
                    turn.final_text = frame["message"]["text"]
                    turn.final_status = frame["message"]["status"]
                    if kind == "message.failed":
                        turn.error = f"reply failed: {frame.get('error', {}).get('code')}"
                    turn.done_at = now
                    return
            elif kind == "error":
                if frame.get("code") == CAPACITY_CODE and await retry_refused(
                    turn, frame.get("retry_after")
                ):
                    await socket.send(message)
                    continue
                turn.error = frame.get("code")
                return
    finally:
        await socket.close()


async def run_graphql_client(turn: Turn, ws_url: str, start: asyncio.Event, ready: Any) -> None:
    import websockets

    socket = await websockets.connect(
        f"{ws_url}/graphql/",
        subprotocols=["graphql-transport-ws"],
        compression=None,
        ping_interval=None,
        max_size=None,
        open_timeout=60,
    )
    try:
        await socket.send(
            json.dumps(
                {"type": "connection_init", "payload": {"authorization": f"Bearer {turn.token}"}}
            )
        )
        ack = json.loads(await socket.recv())
        assert ack["type"] == "connection_ack", ack
        variables = {"id": str(turn.conversation_id)}
        await socket.send(
            json.dumps(
                {
                    "id": "events",
                    "type": "subscribe",
                    "payload": {"query": EVENTS_SUBSCRIPTION, "variables": variables},
                }
            )
        )
        first = json.loads(await socket.recv())  # the ConversationUpdated snapshot
        assert first["type"] == "next", first
        ready()
        await start.wait()
        turn.sent_at = time.time()
        send = json.dumps(
            {
                "id": "send",
                "type": "subscribe",
                "payload": {
                    "query": SEND_MUTATION,
                    "variables": {**variables, "content": turn.content, "cmid": "b1"},
                },
            }
        )
        await socket.send(send)
        async for raw in socket:
            now = time.time()
            frame = json.loads(raw)
            if frame.get("id") == "send":
                if CAPACITY_CODE in raw and await retry_refused(turn, 1):
                    await socket.send(send)  # the "send" operation has completed: reusable
                    continue
                if frame["type"] == "error" or frame.get("payload", {}).get("errors"):
                    turn.error = json.dumps(frame)[:200]
                    return
                continue
            if frame["type"] != "next":
                turn.error = json.dumps(frame)[:200]
                return
            event = frame["payload"]["data"]["conversationEvents"]
            name = event["__typename"]
            if name == "MessageDelta":
                turn.on_delta(event["index"], event["offset"], event["delta"], now)
            elif name in ("MessageCompleted", "MessageFailed") and event["message"]["role"] == "AI":
                turn.final_text = event["message"]["text"]
                turn.final_status = event["message"]["status"].lower()
                if name == "MessageFailed":
                    turn.error = f"reply failed: {(event.get('error') or {}).get('code')}"
                turn.done_at = now
                return
    finally:
        await socket.close()


async def drive(turns: list[Turn], ws_url: str, surface: str, timeout: float) -> float:
    """Connect every client, then start every turn at once; returns the start time."""
    client = run_chat_client if surface == "ws" else run_graphql_client
    start = asyncio.Event()
    all_connected = asyncio.Event()
    gate = asyncio.Semaphore(50)  # connect in waves, not as one SYN flood
    waiting = len(turns)

    async def one(turn: Turn) -> None:
        nonlocal waiting
        connected = asyncio.Event()
        await gate.acquire()
        task = asyncio.ensure_future(client(turn, ws_url, start, connected.set))
        waiter = asyncio.ensure_future(connected.wait())
        try:
            await asyncio.wait({task, waiter}, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            gate.release()
            waiter.cancel()
            waiting -= 1
            if waiting == 0:
                all_connected.set()
        try:
            await asyncio.wait_for(task, timeout)
        except Exception as exc:
            turn.error = turn.error or f"{type(exc).__name__}: {exc}"[:200]

    tasks = [asyncio.ensure_future(one(turn)) for turn in turns]
    await all_connected.wait()
    await asyncio.sleep(0.5)  # let the servers settle after the connection storm
    started = time.time()
    start.set()
    await asyncio.gather(*tasks)
    return started


async def drive_direct(base_url: str, turns: list[Turn], timeout: float) -> float:
    """The floor: the same streams read straight from the fake provider (no Confab)."""
    import httpx

    limits = httpx.Limits(max_connections=len(turns) + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:

        async def one(turn: Turn) -> None:
            body = {
                "model": "bench-model",
                "stream": True,
                "messages": [{"role": "user", "content": turn.content}],
            }
            turn.sent_at = time.time()
            received = ""
            async with client.stream("POST", "/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if not line.startswith("data: {"):
                        continue
                    now = time.time()
                    chunk = json.loads(line[6:])
                    choices = chunk.get("choices") or []
                    piece = (choices[0].get("delta") or {}).get("content") if choices else None
                    if piece:
                        turn.on_delta(turn.next_index, len(received), piece, now)
                        received += piece
            turn.final_text = received
            turn.final_status = "complete"
            turn.done_at = time.time()

        started = time.time()
        await asyncio.gather(*(one(turn) for turn in turns), return_exceptions=True)
        return started


# --- one case ----------------------------------------------------------------------


@dataclass
class Case:
    surface: str
    layer: str
    flush: float
    n: int


@dataclass
class Result:
    case: Case
    ttft: Summary
    setup: Summary
    load: tuple[float, float]
    relay: Summary
    wall: float
    server_cpu: float
    worker_cpu: list[float]
    others_cpu: dict[str, float]
    server_rss: float
    delivered: int
    complete_clients: int
    complete_db: int
    humans_db: int
    missing: int
    out_of_order: int
    retried: int
    errors: list[str]

    @property
    def ok(self) -> bool:
        n = self.case.n
        return (
            self.complete_clients == n
            and self.complete_db == (n if self.case.surface != "direct" else 0)
            and self.missing == 0
            and self.out_of_order == 0
        )


def service_pids(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def chunk_send_times(
    fake: Any, turns: list[Turn]
) -> tuple[dict[int, dict[int, float]], dict[int, float]]:
    """({turn index: {chunk number: fake server send time}}, {turn index: time the
    provider request arrived}) from the fake's request log."""
    by_content = {turn.content: turn.index for turn in turns}
    sent: dict[int, dict[int, float]] = {}
    arrived: dict[int, float] = {}
    for record in fake.call("GET", "/_fake/requests", timeout=120):
        messages = (record.get("body") or {}).get("messages") or []
        contents = [m.get("content") for m in messages if m.get("role") == "user"]
        index = by_content.get(contents[-1]) if contents else None
        if index is None:
            continue
        times = sent.setdefault(index, {})
        arrived[index] = record["received_at"]
        for chunk in record.get("chunks") or []:
            choices = chunk.get("choices") or []
            piece = (choices[0].get("delta") or {}).get("content") if choices else None
            match = CHUNK_RE.match(piece or "")
            if match:
                times[int(match.group(1))] = chunk["x_sent_at"]
    return sent, arrived


def run_case(
    case: Case, fake: Any, *, chunks: int, chunk_delay: float, timeout: float, profile: bool
) -> Result:
    from bench.server import start_uvicorn

    turns = prepare_turns(case.n, chunks)
    warmup = prepare_turns(WARMUP_TURNS, chunks, prefix="bench-warmup")
    fake.call("POST", "/_fake/reset")
    step = {"type": "text", "deltas": chunk_texts(chunks), "chunk_delay": chunk_delay}
    fake.call("POST", "/_fake/script", [step] * (len(turns) + len(warmup)))
    env = {
        # The settings' names: pipelined (the product default), pubsub, core.
        "CONFAB_CHANNEL_LAYER": case.layer,
        "CONFAB_DELTA_FLUSH_SECONDS": str(case.flush),
        "OPENAI_BASE_URL": fake.base_url,
        "CONFAB_LLM_PROVIDER": "openai",
        "CONFAB_LLM_TIMEOUT": str(timeout),
        "CONFAB_LLM_IDLE_TIMEOUT": str(timeout),
        "CONFAB_LLM_MAX_RETRIES": "0",
        "CONFAB_REDIS_PREFIX": f"confab-bench-{uuid.uuid4().hex[:8]}",
    }
    server = None
    spy = None
    try:
        if case.surface == "direct":
            others = {"postgres": service_pids("postgres"), "redis": service_pids("redis-server")}
            load_before = os.getloadavg()[0]
            cpu_before = {k: cpu_seconds(v) for k, v in others.items()}
            fake_before = fake.cpu()
            client_cpu_start = time.process_time()  # the direct read's own CPU only
            started = asyncio.run(drive_direct(fake.url, turns, timeout))
            server_pids: list[int] = []
            worker_pids: list[int] = []
            server_cpu_before = 0.0
            workers_before: list[float] = []
        else:
            server = start_uvicorn(workers=2, env=env)
            # Warm both workers up (imports, first provider client, connections) so the
            # measurement is the steady state, not the first request of a process.
            asyncio.run(drive(warmup, server.ws_url, case.surface, timeout))
            load_before = os.getloadavg()[0]
            # PostgreSQL backends opened during the warm-up serve the measured turns.
            others = {"postgres": service_pids("postgres"), "redis": service_pids("redis-server")}
            server_pids = server.pids()
            worker_pids = server.worker_pids()
            server_cpu_before = cpu_seconds(server_pids)
            workers_before = [cpu_seconds(process_tree(pid)) for pid in worker_pids]
            cpu_before = {k: cpu_seconds(v) for k, v in others.items()}
            fake_before = fake.cpu()
            if profile:
                out = f"/tmp/confab-bench-spy-{case.surface}-{case.layer}-{case.n}.txt"
                spy = start_spy(worker_pids[0], out, mode=os.environ.get("BENCH_SPY_MODE", "gil"))
            client_cpu_start = time.process_time()  # after the data set-up and warm-up
            started = asyncio.run(drive(turns, server.ws_url, case.surface, timeout))
        finished = max((turn.done_at for turn in turns if turn.done_at), default=time.time())
        wall = finished - started
        server_cpu = cpu_seconds(server_pids) - server_cpu_before if server_pids else 0.0
        worker_cpu = [
            cpu_seconds(process_tree(pid)) - before
            for pid, before in zip(worker_pids, workers_before, strict=True)
        ]
        others_cpu = {k: cpu_seconds(v) - cpu_before[k] for k, v in others.items()}
        others_cpu["fake provider"] = fake.cpu() - fake_before
        others_cpu["client"] = time.process_time() - client_cpu_start
        server_rss = rss_mib(server_pids) if server_pids else 0.0
        load = (load_before, os.getloadavg()[0])
        if server is not None:
            wait_for_turns(turns, timeout)
    finally:
        if spy is not None:
            stop_spy(spy)
        if server is not None:
            server.stop()

    sent, arrived = chunk_send_times(fake, turns)
    setup = [arrived[t.index] - t.sent_at for t in turns if t.index in arrived and t.sent_at]
    relay = []
    for turn in turns:
        times = sent.get(turn.index, {})
        relay.extend(
            received - times[j] for j, received in turn.chunk_received.items() if j in times
        )
    ttft = [t.first_delta_at - t.sent_at for t in turns if t.first_delta_at]
    complete_clients = sum(
        1 for t in turns if t.final_status == "complete" and t.final_text == t.expected
    )
    if case.surface == "direct":
        complete_db, humans_db = 0, 0
    else:
        complete_db, humans_db = check_database(turns)
    errors = [f"turn {t.index}: {t.error}" for t in turns if t.error]
    return Result(
        case=case,
        ttft=Summary.of(ttft),
        setup=Summary.of(setup),
        load=load,
        relay=Summary.of(relay),
        wall=wall,
        server_cpu=server_cpu,
        worker_cpu=worker_cpu,
        others_cpu=others_cpu,
        server_rss=server_rss,
        delivered=sum(len(t.chunk_received) for t in turns),
        complete_clients=complete_clients,
        complete_db=complete_db,
        humans_db=humans_db,
        missing=sum(t.missing_chunks for t in turns),
        out_of_order=sum(t.out_of_order for t in turns),
        retried=sum(1 for t in turns if t.refusals),
        errors=errors,
    )


# --- report -------------------------------------------------------------------------


def result_row(result: Result) -> list[str]:
    case = result.case
    return [
        case.surface,
        "-" if case.surface == "direct" else case.layer,
        "-" if case.surface == "direct" else f"{case.flush * 1000:g} ms",
        f"{case.n:,}",
        f"{fmt_ms(result.ttft.median)} / {fmt_ms(result.ttft.p95)} / {fmt_ms(result.ttft.p99)}",
        f"{fmt_ms(result.setup.median)} / {fmt_ms(result.setup.p99)}",
        f"{fmt_ms(result.relay.median)} / {fmt_ms(result.relay.p95)} / {fmt_ms(result.relay.p99)}",
        f"{result.wall:.1f}",
        f"{result.delivered / max(result.wall, 1e-9):,.0f}",
        f"{result.server_cpu:.1f} ({result.server_cpu / max(result.wall, 1e-9):.2f})",
        " + ".join(f"{cpu:.1f}" for cpu in result.worker_cpu) or "-",
        f"{result.others_cpu['postgres']:.1f} / {result.others_cpu['redis']:.1f} / "
        f"{result.others_cpu['fake provider']:.1f} / {result.others_cpu['client']:.1f}",
        f"{result.complete_clients}/{case.n}",
        "-" if case.surface == "direct" else f"{result.complete_db}/{case.n}",
        str(result.missing),
        str(result.out_of_order),
        str(result.retried),
        "yes" if result.ok else "NO",
        f"{result.load[0]:.1f} / {result.load[1]:.1f}",
    ]


HEADERS = [
    "surface",
    "layer",
    "flush",
    "N",
    "TTFT p50/p95/p99 ms",
    "to provider p50/p99 ms",
    "relay p50/p95/p99 ms",
    "wall s",
    "chunks/s",
    "server CPU s (cores)",
    "per worker s",
    "pg / redis / fake / client CPU s",
    "complete (client)",
    "complete (DB)",
    "missing chunks",
    "out of order",
    "refused at capacity, retried",
    "all ok",
    "load avg before/after",
]


def comparison(results: list[Result]) -> str:
    """Each Confab case against the provider-direct floor at the same N."""
    floors = {r.case.n: r for r in results if r.case.surface == "direct"}
    rows = []
    for r in results:
        floor = floors.get(r.case.n)
        if r.case.surface == "direct" or floor is None:
            continue
        rows.append(
            [
                f"{r.case.surface} {r.case.layer} {r.case.flush * 1000:g} ms",
                f"{r.case.n:,}",
                fmt_ratio(r.relay.median / max(floor.relay.median, 1e-9)),
                fmt_ratio(r.relay.p99 / max(floor.relay.p99, 1e-9)),
                fmt_ratio(r.ttft.median / max(floor.ttft.median, 1e-9)),
                f"{r.server_cpu / max(r.case.n, 1) * 1000:.1f}",
            ]
        )
    return table(
        [
            "case",
            "N",
            "relay p50 vs direct",
            "relay p99 vs direct",
            "TTFT p50 vs direct",
            "server CPU ms per turn",
        ],
        rows,
    )


# Issue 21's real-time margins over the provider-direct read at the same N.
RELAY_P99_MARGIN_MS = 100.0
TTFT_P95_MARGIN_MS = 500.0


def real_time(result: Result, floor: Result) -> bool:
    """Real time at this N: relay p99 within 100 ms of the direct read's, TTFT p95 within
    500 ms of it, nothing lost, every message complete."""
    return (
        result.ok
        and result.relay.p99 <= floor.relay.p99 + RELAY_P99_MARGIN_MS
        and result.ttft.p95 <= floor.ttft.p95 + TTFT_P95_MARGIN_MS
    )


def targets(results: list[Result]) -> list[Target]:
    """Issue 21's targets 1 and 2 from the cases run: per surface, server CPU per turn
    against the direct read's client CPU per turn, the largest N run that is real time,
    and relayed chunks per second per core next to the direct read's."""
    floors = {r.case.n: r for r in results if r.case.surface == "direct"}
    rows: list[Target] = []
    for surface in sorted({r.case.surface for r in results} - {"direct"}):
        cases = [r for r in results if r.case.surface == surface and r.case.n in floors]
        for r in cases:
            floor = floors[r.case.n]
            n = r.case.n
            direct_cpu = floor.others_cpu["client"] / n
            rows.append(
                Target(
                    f"{surface} N={n}: server CPU per turn vs direct read's client CPU",
                    (r.server_cpu / n) / max(direct_cpu, 1e-9),
                    3.0,
                    "<=",
                )
            )
            rows.append(
                Target(
                    f"{surface} N={n}: PostgreSQL + Redis CPU per turn (ms)",
                    (r.others_cpu["postgres"] + r.others_cpu["redis"]) / n * 1000,
                    0,
                    "info",
                    " ms",
                )
            )
            rows.append(
                Target(
                    f"{surface} N={n}: relay p99 minus direct p99 (ms)",
                    r.relay.p99 - floor.relay.p99,
                    RELAY_P99_MARGIN_MS,
                    "<=",
                    " ms",
                )
            )
            rows.append(
                Target(
                    f"{surface} N={n}: TTFT p95 minus direct p95 (ms)",
                    r.ttft.p95 - floor.ttft.p95,
                    TTFT_P95_MARGIN_MS,
                    "<=",
                    " ms",
                )
            )
            rows.append(
                Target(
                    f"{surface} N={n}: chunks lost + out of order + incomplete",
                    r.missing + r.out_of_order + (n - r.complete_db) + (n - r.complete_clients),
                    0,
                    "==",
                    "",
                )
            )
            per_core = r.delivered / max(r.server_cpu, 1e-9)
            direct_per_core = floor.delivered / max(floor.others_cpu["client"], 1e-9)
            rows.append(
                Target(
                    f"{surface} N={n}: relayed chunks/s per server core (direct: "
                    f"{direct_per_core:,.0f} per client core)",
                    round(per_core),
                    0,
                    "info",
                    "",
                )
            )
        real = [r.case.n for r in cases if real_time(r, floors[r.case.n])]
        rows.append(
            Target(
                f"{surface}: largest N run that is real time (of {[r.case.n for r in cases]})",
                max(real, default=0),
                150,
                ">=",
                "",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="Concurrent streaming benchmark (issue 8).")
    parser.add_argument("--n", default="100,500,1000", help="comma-separated turn counts")
    parser.add_argument("--surface", default="ws,graphql", help="ws, graphql (comma-separated)")
    parser.add_argument(
        "--layer",
        default="pipelined",
        help="CONFAB_CHANNEL_LAYER values: pipelined (the default), pubsub, core (comma-separated)",
    )
    parser.add_argument("--flush", default="0.03", help="CONFAB_DELTA_FLUSH_SECONDS values")
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--chunk-delay", type=float, default=0.02, help="seconds between chunks")
    parser.add_argument("--timeout", type=float, default=180.0, help="per client, seconds")
    parser.add_argument("--no-direct", action="store_true", help="skip the provider-direct floor")
    parser.add_argument("--profile", action="store_true", help="py-spy one worker per case")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="issue 21's check in < 3 min: N = 150, ws and graphql, 50 ms pacing",
    )
    args = parser.parse_args()
    if args.quick:
        args.n, args.surface, args.layer, args.flush = "150", "ws,graphql", "pipelined", "0.03"
        args.chunk_delay, args.chunks, args.no_direct = 0.05, 50, False

    setup_django()
    ensure_database()
    from django.db import OperationalError, connections

    from bench.fakellm import FakeLLM

    counts = [int(n) for n in args.n.split(",")]
    cases = []
    for n in counts:
        if not args.no_direct:
            cases.append(Case("direct", "-", 0.0, n))
        for surface in args.surface.split(","):
            for layer in args.layer.split(","):
                for flush in (float(f) for f in args.flush.split(",")):
                    cases.append(Case(surface, layer, flush, n))

    print_machine()
    print(
        f"# 2 uvicorn workers, Redis channel layer, PostgreSQL; {args.chunks} chunks per reply, "
        f"{args.chunk_delay * 1000:g} ms apart; turns start together after all sockets connect; "
        f"bench toggles: {active_toggles()}"
    )
    results = []
    with FakeLLM() as fake:
        for case in cases:
            for attempt in (1, 2):
                try:
                    result = run_case(
                        case,
                        fake,
                        chunks=args.chunks,
                        chunk_delay=args.chunk_delay,
                        timeout=args.timeout,
                        profile=args.profile,
                    )
                    break
                except OperationalError as exc:
                    # Another user of this PostgreSQL server terminated our session (a
                    # restart test, say): measure the case again on a fresh connection.
                    connections.close_all()
                    print(f"    case interrupted ({exc}); attempt {attempt}", flush=True)
                    if attempt == 2:
                        raise
            results.append(result)
            print(table(HEADERS, [result_row(result)]).splitlines()[-1], flush=True)
            kinds: dict[str, int] = {}
            for error in result.errors:
                kind = error.split(": ", 1)[1][:80] if ": " in error else error
                kinds[kind] = kinds.get(kind, 0) + 1
            for kind, count in sorted(kinds.items(), key=lambda item: -item[1])[:5]:
                print(f"    {count} x {kind}", flush=True)
    print()
    print(table(HEADERS, [result_row(r) for r in results]))
    print()
    print(comparison(results))
    if not args.no_direct:
        print_targets("bench.streaming", targets(results))


if __name__ == "__main__":
    main()
