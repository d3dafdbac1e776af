"""Streaming for the generated Confab client: typed live events that resume by Last-Event-ID.

`make sdk` copies this file into the generated package as `confab_client.streaming`
(the generator reads JSON only). It parses each Server-Sent Event's `data:` into the
generated model of its `type` (the `ConversationEvent` schema of openapi.yaml) and
keeps the event's `id:`, the stream position. A dropped connection is resumed with
`Last-Event-ID`, so the text built from the deltas has no gap and nothing twice.

    from confab_client import AuthenticatedClient
    from confab_client.streaming import send_message_events, conversation_events

    for event in send_message_events(api, 12, content="Hello", client_message_id="c-1"):
        if event.type == "message.delta":
            print(event.data.delta, end="")

    # Later (the app came back): everything after the last id it saw, then live events.
    for event in conversation_events(api, 12, last_event_id=saved_id):
        ...
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from .client import AuthenticatedClient
from .models import (
    BranchChangedEvent,
    ConversationChangedEvent,
    MessageDeltaEvent,
    MessageEvent,
    MessageFailedEvent,
    MessagesDeletedEvent,
)

MODELS: dict[str, Any] = {
    "message.created": MessageEvent,
    "message.completed": MessageEvent,
    "message.failed": MessageFailedEvent,
    "message.delta": MessageDeltaEvent,
    "message.deleted": MessagesDeletedEvent,
    "conversation.created": ConversationChangedEvent,
    "conversation.updated": ConversationChangedEvent,
    "conversation.cleared": ConversationChangedEvent,
    "conversation.deleted": ConversationChangedEvent,
    "conversation.branch_changed": BranchChangedEvent,
}
FINAL = {"message.completed", "message.failed"}


@dataclass
class StreamEvent:
    """One event: its position (`id`, give it back as `last_event_id`), `type`, and `data`
    parsed into its generated model (a dict for a type this client does not know)."""

    id: str
    type: str
    data: Any


def parse_event(event_id: str, raw: str) -> StreamEvent:
    payload = json.loads(raw)
    model = MODELS.get(payload.get("type", ""))
    data = model.from_dict(payload) if model is not None else payload
    return StreamEvent(id=event_id, type=payload.get("type", ""), data=data)


def _events(lines: Iterator[str]) -> Iterator[StreamEvent]:
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in fields:
                yield parse_event(fields.get("id", ""), fields["data"])
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


async def _aevents(lines: AsyncIterator[str]) -> AsyncIterator[StreamEvent]:
    fields: dict[str, str] = {}
    async for line in lines:
        if not line:
            if "data" in fields:
                yield parse_event(fields.get("id", ""), fields["data"])
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def _raise_for_error(response: httpx.Response) -> None:
    if response.status_code >= 400:
        response.read()
        raise httpx.HTTPStatusError(
            f"{response.status_code}: {response.text}", request=response.request, response=response
        )


def conversation_events(
    client: AuthenticatedClient,
    conversation_id: int,
    *,
    last_event_id: str | None = None,
    reconnect: bool = True,
    max_retries: int = 5,
    retry_delay: float = 0.5,
) -> Iterator[StreamEvent]:
    """The conversation's events (`GET …/events/`) from `last_event_id` on, for as long as
    the caller iterates; a dropped connection is resumed from the last id received."""
    retries = 0
    while True:
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        try:
            with client.get_httpx_client().stream(
                "GET",
                f"/api/v1/conversations/{conversation_id}/events/",
                headers=headers,
                timeout=httpx.Timeout(30, read=None),
            ) as response:
                _raise_for_error(response)
                for event in _events(response.iter_lines()):
                    retries = 0
                    last_event_id = event.id or last_event_id
                    yield event
                    if event.type == "conversation.deleted":
                        return
        except (httpx.TransportError, httpx.RemoteProtocolError):
            if not reconnect or retries >= max_retries:
                raise
            retries += 1
            time.sleep(retry_delay * retries)


def send_message_events(
    client: AuthenticatedClient,
    conversation_id: int,
    *,
    content: str,
    client_message_id: str,
    on_busy: str | None = None,
    reconnect: bool = True,
    max_retries: int = 5,
    retry_delay: float = 0.5,
) -> Iterator[StreamEvent]:
    """Send a message and yield its turn's events until the final reply; a dropped
    connection is resumed on the events stream from the last id received (the
    `client_message_id` makes the send itself safe to repeat)."""
    body: dict[str, Any] = {"content": content, "client_message_id": client_message_id}
    if on_busy is not None:
        body["on_busy"] = on_busy
    last_event_id: str | None = None
    final_ids: set[int] = set()
    try:
        with client.get_httpx_client().stream(
            "POST",
            f"/api/v1/conversations/{conversation_id}/messages/",
            json=body,
            headers={"Accept": "text/event-stream"},
            timeout=httpx.Timeout(30, read=None),
        ) as response:
            _raise_for_error(response)
            for event in _events(response.iter_lines()):
                last_event_id = event.id or last_event_id
                yield event
                if event.type in FINAL:
                    final_ids.add(event.data.message.id)
            return  # the turn's stream ends after its final reply
    except (httpx.TransportError, httpx.RemoteProtocolError):
        if not reconnect:
            raise
    # Dropped: the rest of the turn from the events stream, until the conversation's
    # lock is released after a final reply.
    seen_final = bool(final_ids)
    for event in conversation_events(
        client,
        conversation_id,
        last_event_id=last_event_id,
        max_retries=max_retries,
        retry_delay=retry_delay,
    ):
        yield event
        if event.type in FINAL and event.data.message.role == "ai":
            seen_final = True
        if (
            seen_final
            and event.type == "conversation.updated"
            and not event.data.conversation.active_turn_id
        ):
            return


async def aconversation_events(
    client: AuthenticatedClient,
    conversation_id: int,
    *,
    last_event_id: str | None = None,
    max_retries: int = 5,
    retry_delay: float = 0.5,
) -> AsyncIterator[StreamEvent]:
    """`conversation_events` for asyncio."""
    import asyncio

    retries = 0
    while True:
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        try:
            async with client.get_async_httpx_client().stream(
                "GET",
                f"/api/v1/conversations/{conversation_id}/events/",
                headers=headers,
                timeout=httpx.Timeout(30, read=None),
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise httpx.HTTPStatusError(
                        f"{response.status_code}: {response.text}",
                        request=response.request,
                        response=response,
                    )
                async for event in _aevents(response.aiter_lines()):
                    retries = 0
                    last_event_id = event.id or last_event_id
                    yield event
                    if event.type == "conversation.deleted":
                        return
        except (httpx.TransportError, httpx.RemoteProtocolError):
            if retries >= max_retries:
                raise
            retries += 1
            await asyncio.sleep(retry_delay * retries)
