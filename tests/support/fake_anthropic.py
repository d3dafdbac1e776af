"""A fake Anthropic Messages API: `POST /v1/messages` with `"stream": true` answered in
the real SSE events (message_start, content_block_start/delta/stop with text_delta and
input_json_delta, message_delta with usage, message_stop) and errors in Anthropic's
`{"type": "error", "error": {"type", "message"}}` body. See tests/support/fakeprovider.py.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.fakeprovider import Fail, FakeProvider, Recorded, Reply, sse

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class FakeAnthropic(FakeProvider):
    def error_body(self, step: Fail) -> dict[str, Any]:
        kind = ERROR_TYPES.get(step.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": step.message}}

    def frames(self, step: Reply, request: Recorded) -> list[bytes]:
        model = (request.body or {}).get("model", "claude-fake")
        input_tokens, output_tokens = step.usage
        frames = [
            sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": f"msg_fake_{len(self.requests)}",
                        "type": "message",
                        "role": "assistant",
                        "model": model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                    },
                },
            ),
            sse("ping", {"type": "ping"}),
        ]
        index = 0
        if step.text:
            frames.append(
                sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            )
            for piece in step.text:
                frames.append(
                    sse(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "text_delta", "text": piece},
                        },
                    )
                )
            frames.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        for number, call in enumerate(step.tool_calls):
            arguments = json.dumps(call.get("args", {}))
            frames.append(
                sse(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": index,
                        "content_block": {
                            "type": "tool_use",
                            "id": call.get("id") or f"toolu_fake_{number}",
                            "name": call["name"],
                            "input": {},
                        },
                    },
                )
            )
            half = len(arguments) // 2
            for part in (arguments[:half], arguments[half:]):
                frames.append(
                    sse(
                        "content_block_delta",
                        {
                            "type": "content_block_delta",
                            "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": part},
                        },
                    )
                )
            frames.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1
        frames.append(
            sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": "tool_use" if step.tool_calls else "end_turn",
                        "stop_sequence": None,
                    },
                    # Cumulative, input included, as the API sends it today.
                    "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
                },
            )
        )
        frames.append(sse("message_stop", {"type": "message_stop"}))
        return frames
