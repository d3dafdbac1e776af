"""REST turns on real uvicorn processes: SSE arrives as it is produced, and a retry
that lands on another worker gets the first turn (over PostgreSQL and Redis)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conversations.models import Conversation
from tests.support.requirements import needs_redis
from tests.support.rest import bearer, parse_sse

pytestmark = pytest.mark.django_db(transaction=True)


def messages_url(server, conversation) -> str:
    return f"{server.url}/api/v1/conversations/{conversation.pk}/messages/"


def test_sse_is_streamed_live(live_server_factory, llm, token, conversation):
    live_server = live_server_factory()
    llm.reply_text(["one ", "two ", "three ", "four ", "five"], chunk_delay=0.3)
    arrivals: list[tuple[float, str]] = []
    body = ""
    with httpx.stream(
        "POST",
        messages_url(live_server, conversation),
        json={"content": "Count"},
        headers={**bearer(token), "Accept": "text/event-stream"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        for chunk in response.iter_text():
            body += chunk
            arrivals.append((time.monotonic(), chunk))

    events = parse_sse(body)
    assert events[-1]["event"] == "message.completed"
    assert events[-1]["data"]["message"]["text"] == "one two three four five"
    first_delta = next(at for at, chunk in arrivals if "message.delta" in chunk)
    completed = next(at for at, chunk in arrivals if "message.completed" in chunk)
    # Five chunks 0.3 s apart: the first delta came well before the end.
    assert completed - first_delta > 0.6


@needs_redis("a retry landing on another worker")
def test_retry_on_another_worker_is_the_same_turn(
    live_server_factory, seed_agents, llm, token, conversation
):
    first_server, second_server = live_server_factory(), live_server_factory()
    llm.reply_text(["a", "b", "c", "d", "e"], chunk_delay=0.3)
    payload = {"content": "Hi", "client_message_id": "retry-elsewhere"}

    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(
            httpx.post,
            messages_url(first_server, conversation),
            json=payload,
            headers=bearer(token),
            timeout=30,
        )
        for _ in range(250):
            if Conversation.objects.get(pk=conversation.pk).active_turn_id:
                break
            time.sleep(0.02)
        streamed = httpx.post(
            messages_url(second_server, conversation),
            json=payload,
            headers={**bearer(token), "Accept": "text/event-stream"},
            timeout=30,
        )
        waited = httpx.post(
            messages_url(second_server, conversation),
            json=payload,
            headers=bearer(token),
            timeout=30,
        )
        result = first.result().json()

    assert streamed.headers["Idempotent-Replayed"] == "true"
    events = parse_sse(streamed.text)
    assert events[-1]["event"] == "message.completed"
    assert events[-1]["data"]["message"] == result["ai_message"]
    assert waited.status_code == 200 and waited.json() == result
    assert result["ai_message"]["text"] == "abcde"
    assert len(llm.requests) == 1
