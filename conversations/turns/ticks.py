"""Group commit of the periodic writes of running turns (partial text, heartbeat).

Every streaming reply wakes every CONFAB_PARTIAL_SAVE_SECONDS to save its partial
text and, every CONFAB_TURN_HEARTBEAT_SECONDS, to heartbeat its turn lock. Done
one turn at a time, each write was a `sync_to_async` hop, a round trip and a
commit on the process's single sync thread: with hundreds of replies streaming,
that thread spent its time waiting on WAL flushes and every other DB call of
the process (starting turns, finishing them) queued behind it.

Here a turn's tick joins a batch instead: the batch in flight runs
`services.tick_turns` (one transaction, in a worker thread of its own) while
new ticks gather for the next one. A lone turn is written at once; many turns
share each commit.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref

from channels.db import database_sync_to_async

from conversations import services


class _GroupCommit:
    """The batcher of one event loop."""

    def __init__(self) -> None:
        self.pending: list[tuple[services.TurnTick, asyncio.Future[str]]] = []
        self.flushing = False
        self.task: asyncio.Future[None] | None = None

    async def submit(self, tick: services.TurnTick) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.pending.append((tick, future))
        if not self.flushing:
            self.flushing = True
            self.task = asyncio.ensure_future(self._flush())
        return await future

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


_BATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _GroupCommit] = (
    weakref.WeakKeyDictionary()
)


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
    loop = asyncio.get_running_loop()
    batcher = _BATCHERS.get(loop)
    if batcher is None:
        batcher = _BATCHERS[loop] = _GroupCommit()
    return await batcher.submit(
        services.TurnTick(
            conversation_id=conversation_id,
            turn_id=turn_id,
            message_id=message_id,
            text=text,
            touch=touch,
        )
    )
