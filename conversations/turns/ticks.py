"""Group commit of the periodic writes of running turns (partial text, heartbeat).

Every streaming reply wakes every CONFAB_PARTIAL_SAVE_SECONDS to save its partial
text, and every CONFAB_TURN_HEARTBEAT_SECONDS the process heartbeats the turn lock
of each turn it runs. Done one turn at a time, each write was a `sync_to_async`
hop, a round trip and a commit on the process's single sync thread: with hundreds
of replies streaming, that thread spent its time waiting on WAL flushes and every
other DB call of the process (starting turns, finishing them) queued behind it.

Here a turn's tick joins a batch instead: the batch in flight runs
`services.tick_turns` (one transaction, in a worker thread of its own) while
new ticks gather for the next one. A lone turn is written at once; many turns
share each commit.

The heartbeat is the process's, not the stream's: a turn is registered as soon as
it holds its lock (`register`), so one still waiting for its start-up (history,
provider connection) under overload is heartbeated too. Before, the first
heartbeat came from the stream, and a turn whose start-up outlasted
CONFAB_TURN_STALE_SECONDS was ended as `interrupted` by another process's recovery
sweep. A process that dies stops heartbeating all its turns, which the sweep then
recovers.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.conf import settings

from conversations import services

logger = logging.getLogger(__name__)


class _GroupCommit:
    """The batcher of one event loop."""

    def __init__(self) -> None:
        self.pending: list[tuple[services.TurnTick, asyncio.Future[str]]] = []
        self.flushing = False
        self.task: asyncio.Future[None] | None = None

    async def submit(self, tick: services.TurnTick) -> str:
        (status,) = await self.submit_many([tick])
        return status

    async def submit_many(self, ticks: list[services.TurnTick]) -> list[str]:
        """Join the next batch with `ticks`; their statuses, in order."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[str]] = []
        for tick in ticks:
            future: asyncio.Future[str] = loop.create_future()
            self.pending.append((tick, future))
            futures.append(future)
        if not self.flushing:
            self.flushing = True
            self.task = asyncio.ensure_future(self._flush())
        return list(await asyncio.gather(*futures))

    async def _flush(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                try:
                    # A thread of its own, not the process's one sync thread: under
                    # load that thread's queue (turn starts, finishes, async ORM calls)
                    # delayed heartbeats long enough for other processes to declare
                    # live turns dead. database_sync_to_async closes the connection
                    # around the call, so a restarted database is reconnected.
                    statuses = await database_sync_to_async(
                        services.tick_turns, thread_sensitive=False
                    )(ticks=[tick for tick, _ in batch])
                except Exception as exc:  # noqa: BLE001 - each waiting turn gets the error
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for tick, future in batch:
                    if not future.done():
                        future.set_result(statuses[tick.turn_id])
        finally:
            self.flushing = False


@dataclass
class _Registered:
    conversation_id: int
    on_status: Callable[[str], None]


class _Heartbeat:
    """Heartbeats every registered turn of one event loop, in one batch per beat."""

    def __init__(self, batcher: _GroupCommit) -> None:
        self.batcher = batcher
        self.turns: dict[uuid.UUID, _Registered] = {}
        self.task: asyncio.Task[None] | None = None

    def register(
        self, conversation_id: int, turn_id: uuid.UUID, on_status: Callable[[str], None]
    ) -> None:
        self.turns[turn_id] = _Registered(conversation_id, on_status)
        if self.task is None or self.task.done() or self.task.cancelling():
            # A context of its own: not that of the request that happened to come first.
            self.task = asyncio.get_running_loop().create_task(
                self._beat(), context=contextvars.Context()
            )

    def unregister(self, turn_id: uuid.UUID) -> None:
        self.turns.pop(turn_id, None)
        if not self.turns and self.task is not None:
            # Nothing left to heartbeat: stop now rather than at the next beat.
            self.task.cancel()

    async def _beat(self) -> None:
        # Runs while turns are registered: an idle process writes nothing.
        while self.turns:
            await asyncio.sleep(settings.CONFAB_TURN_HEARTBEAT_SECONDS)
            turns = list(self.turns.items())
            if not turns:
                return
            ticks = [
                services.TurnTick(
                    conversation_id=turn.conversation_id, turn_id=turn_id, text=None, touch=True
                )
                for turn_id, turn in turns
            ]
            try:
                statuses = await self.batcher.submit_many(ticks)
            except Exception:
                # The next beat retries: the sweep allows CONFAB_TURN_STALE_SECONDS.
                logger.warning("Turn heartbeat failed; will retry.", exc_info=True)
                continue
            for (turn_id, turn), status in zip(turns, statuses, strict=True):
                # A turn that ended meanwhile released its lock: "lost" is not news to it.
                if status != "running" and turn_id in self.turns:
                    turn.on_status(status)


@dataclass
class _LoopTicks:
    batcher: _GroupCommit
    heartbeat: _Heartbeat


_LOOPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopTicks] = (
    weakref.WeakKeyDictionary()
)


def _loop_ticks() -> _LoopTicks:
    loop = asyncio.get_running_loop()
    ticks = _LOOPS.get(loop)
    if ticks is None:
        batcher = _GroupCommit()
        ticks = _LOOPS[loop] = _LoopTicks(batcher=batcher, heartbeat=_Heartbeat(batcher))
    return ticks


def register(*, conversation_id: int, turn_id: uuid.UUID, on_status: Callable[[str], None]) -> None:
    """Heartbeat the turn's lock every CONFAB_TURN_HEARTBEAT_SECONDS until `unregister`.

    `on_status` is called with `cancel` (asked from any process) or `lost` (the lock
    was taken away: cleared, deleted or recovered) when a heartbeat learns it.
    """
    _loop_ticks().heartbeat.register(conversation_id, turn_id, on_status)


def unregister(turn_id: uuid.UUID) -> None:
    """Stop heartbeating the turn (it ended). Safe to call from a done callback."""
    for ticks in list(_LOOPS.values()):
        if turn_id in ticks.heartbeat.turns:
            ticks.heartbeat.unregister(turn_id)


async def tick_turn(
    *,
    conversation_id: int,
    turn_id: uuid.UUID,
    message_id: int,
    text: str | None,
    touch: bool,
) -> str:
    """Save `text` (None: unchanged) and heartbeat when `touch`, batched with the other
    turns of this process; returns `running`, `cancel` or `lost` (see `services.tick_turns`)."""
    return await _loop_ticks().batcher.submit(
        services.TurnTick(
            conversation_id=conversation_id,
            turn_id=turn_id,
            message_id=message_id,
            text=text,
            touch=touch,
        )
    )
