"""Helpers for the turn engine, consumer and recovery tests (not a test module).

- `eventually`: poll a condition with a deadline instead of sleeping.
- `in_other_connection`: run ORM code in another thread, i.e. on another
  database session, and close that session afterwards.
- `GroupListener`: listen to a Channels group like a live surface does.
- `QueryLog`: count the SQL of a turn, whatever thread runs it.
- `turn_cleanup` (autouse where imported): every turn task started by a test
  has ended before the test's database is flushed, and the connection of
  asgiref's sync thread is closed so the test database can be dropped.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection, connections
from django.db.backends.signals import connection_created

from conversations.events import CHANNEL_MESSAGE_TYPE
from conversations.titles import generation as titles
from conversations.turns import engine


async def eventually(
    check: Callable[[], Any], *, timeout: float = 5.0, interval: float = 0.02, what: str = ""
) -> Any:
    """Return the first truthy result of `check()` (sync or async), polling until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        await asyncio.sleep(interval)


async def in_other_connection(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run `fn` in a worker thread: another thread is another Django connection (session)."""

    def run() -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            connections.close_all()

    return await sync_to_async(run, thread_sensitive=False)()


class GroupListener:
    """A channel subscribed to Channels groups, receiving Confab events as a surface would."""

    def __init__(self, *groups: str) -> None:
        self.groups = groups
        self.events: list[dict[str, Any]] = []

    async def __aenter__(self) -> GroupListener:
        self.layer = get_channel_layer()
        self.channel = await self.layer.new_channel()
        for group in self.groups:
            await self.layer.group_add(group, self.channel)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for group in self.groups:
            await self.layer.group_discard(group, self.channel)

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        message = await asyncio.wait_for(self.layer.receive(self.channel), timeout)
        assert message["type"] == CHANNEL_MESSAGE_TYPE
        self.events.append(message["event"])
        return message["event"]

    async def until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """Receive events until one matches `predicate` (all are kept in `events`)."""
        deadline = time.monotonic() + timeout
        while True:
            event = await self.next(timeout=max(0.01, deadline - time.monotonic()))
            if predicate(event):
                return event

    async def until_type(self, event_type: str, timeout: float = 5.0) -> dict[str, Any]:
        return await self.until(lambda event: event["type"] == event_type, timeout)

    async def drain(self, quiet: float = 0.2) -> list[dict[str, Any]]:
        """Receive until nothing arrives for `quiet` seconds."""
        while True:
            try:
                await self.next(timeout=quiet)
            except TimeoutError:
                return self.events

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == event_type]


class QueryLog(list):
    """Every SQL statement run while active, on the connections it watches.

    Django connections are per thread, and `connection.execute_wrapper` (the
    public hook) is per connection object, so a CaptureQueriesContext in the
    test's thread misses what other threads run. `with QueryLog()` watches every
    connection opened meanwhile in any thread (`connection_created`): a view's or a
    consumer's worker threads. `async with QueryLog()` also watches the test
    thread's connection and that of asgiref's sync thread (by running the installer
    through `sync_to_async`, which runs there when no request context exists: where
    a turn task's ORM calls go). Tests check the log holds the writes they expect,
    so a miss cannot pass silently.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._wrappers: list[Any] = []

    @property
    def statements(self) -> list[str]:
        return self

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        with self._lock:
            self.append(sql)
        return execute(sql, params, many, context)

    def _install(self, wrapper: Any) -> None:
        if self not in wrapper.execute_wrappers:
            wrapper.execute_wrappers.append(self)
            self._wrappers.append(wrapper)

    def _on_created(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        self._install(connection)

    def __enter__(self) -> QueryLog:
        connection_created.connect(self._on_created, weak=False)
        return self

    def __exit__(self, *exc: object) -> None:
        connection_created.disconnect(self._on_created)
        for wrapper in self._wrappers:
            if self in wrapper.execute_wrappers:
                wrapper.execute_wrappers.remove(self)

    async def __aenter__(self) -> QueryLog:
        self.__enter__()
        self._install(connection)
        await sync_to_async(lambda: self._install(connection))()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

    def count(self, prefix: str = "") -> int:  # type: ignore[override]
        return sum(1 for sql in self if sql.lstrip().upper().startswith(prefix.upper()))

    def matching(self, *fragments: str) -> list[str]:
        return [sql for sql in self if all(f in sql for f in fragments)]

    def containing(self, fragment: str) -> list[str]:
        """Statements containing `fragment`, ignoring case."""
        return [sql for sql in self if fragment.upper() in sql.upper()]


async def drain_running_turns(timeout: float = 10.0) -> None:
    """Wait for every turn task of this process; cancel (and fail) any that hang."""
    tasks = [running.task for running in list(engine._RUNNING.values())]
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)
        raise AssertionError(f"{len(pending)} turn task(s) still running at teardown")


@pytest.fixture(autouse=True)
async def turn_cleanup():
    """Turn tasks end inside the test; asgiref's sync thread drops its DB session after."""
    yield
    try:
        await drain_running_turns()
        # Title tasks a turn started (conversations/titles) write too: ended before the flush.
        await titles.drain()
    finally:
        await sync_to_async(connections.close_all)()
