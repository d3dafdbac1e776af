"""A chat websocket client over Channels' communicator, for tests of every surface."""

from __future__ import annotations

import json
import time
from typing import Any

from channels.testing import WebsocketCommunicator

from backend.asgi import application

CLOSE = "<close>"


class Socket:
    """A websocket client over Channels' communicator, keeping every frame it received."""

    def __init__(self, path: str, token: str | None = None, app: Any = application, **kw):
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        self.comm = WebsocketCommunicator(app, path, headers=kw.get("headers", headers))
        self.frames: list[dict[str, Any]] = []
        self.open = False

    async def connect(self) -> dict[str, Any]:
        """Connect and return the first frame (`ready`) or the close (`{"type": CLOSE, "code"}`)."""
        accepted, code = await self.comm.connect(timeout=5)
        if not accepted:
            return {"type": CLOSE, "code": code}
        self.open = True
        return await self.recv()

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        output = await self.comm.receive_output(timeout)
        if output["type"] == "websocket.close":
            self.open = False
            frame = {"type": CLOSE, "code": output.get("code")}
        else:
            frame = json.loads(output["text"])
        self.frames.append(frame)
        return frame

    async def until(self, frame_type: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.recv(timeout=max(0.05, deadline - time.monotonic()))
            if frame["type"] == frame_type and all(
                frame.get(k) == v or frame.get("message", {}).get(k) == v for k, v in match.items()
            ):
                return frame

    async def send(self, data: dict[str, Any] | str) -> None:
        await self.comm.send_to(text_data=data if isinstance(data, str) else json.dumps(data))

    async def ping(self) -> None:
        await self.send({"type": "ping"})
        assert (await self.until("pong"))["type"] == "pong"

    async def quiet(self, seconds: float = 0.2) -> bool:
        return await self.comm.receive_nothing(timeout=seconds)

    async def close(self) -> None:
        await self.comm.disconnect(timeout=5)

    def of_type(self, frame_type: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == frame_type]


def ws_path(conversation_id: int) -> str:
    return f"/ws/conversations/{conversation_id}/"
