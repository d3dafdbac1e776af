"""A fake Ollama server: `POST /api/chat` with `"stream": true` answered in NDJSON, one
`{"model", "created_at", "message": {"role", "content"[, "tool_calls"]}, "done": false}`
object per line, ending with the `"done": true` line that carries `prompt_eval_count` and
`eval_count` (the usage); errors as `{"error": "..."}` with the HTTP status.
See tests/support/fakeprovider.py.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.fakeprovider import Fail, FakeProvider, Recorded, Reply

CREATED_AT = "2026-12-07T08:00:00.000000Z"


def _line(data: dict[str, Any]) -> bytes:
    return (json.dumps(data) + "\n").encode()


class FakeOllama(FakeProvider):
    content_type = "application/x-ndjson"

    def error_body(self, step: Fail) -> dict[str, Any]:
        return {"error": step.message}

    def frames(self, step: Reply, request: Recorded) -> list[bytes]:
        model = (request.body or {}).get("model", "llama-fake")

        def chunk(message: dict[str, Any], **extra: Any) -> bytes:
            return _line(
                {
                    "model": model,
                    "created_at": CREATED_AT,
                    "message": {"role": "assistant", "content": "", **message},
                    "done": False,
                    **extra,
                }
            )

        frames = [chunk({"content": piece}) for piece in step.text]
        if step.tool_calls:
            frames.append(
                chunk(
                    {
                        "tool_calls": [
                            {"function": {"name": call["name"], "arguments": call.get("args", {})}}
                            for call in step.tool_calls
                        ]
                    }
                )
            )
        input_tokens, output_tokens = step.usage
        frames.append(
            _line(
                {
                    "model": model,
                    "created_at": CREATED_AT,
                    "message": {"role": "assistant", "content": ""},
                    "done": True,
                    "done_reason": "stop",
                    "total_duration": 1_000_000,
                    "load_duration": 1_000,
                    "prompt_eval_count": input_tokens,
                    "prompt_eval_duration": 1_000,
                    "eval_count": output_tokens,
                    "eval_duration": 1_000,
                }
            )
        )
        return frames
