"""A fake Gemini API: `POST /v1beta/models/{model}:streamGenerateContent` answered as the
REST transport of Google's client reads it, a JSON array streamed one
`GenerateContentResponse` at a time (`candidates[].content.parts[]` with `text` or
`functionCall`, `usageMetadata` on the last), and errors as
`{"error": {"code", "message", "status"}}`. See tests/support/fakeprovider.py.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.fakeprovider import Fail, FakeProvider, Recorded, Reply

STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class FakeGemini(FakeProvider):
    content_type = "application/json; charset=UTF-8"

    def error_body(self, step: Fail) -> dict[str, Any]:
        return {
            "error": {
                "code": step.status,
                "message": step.message,
                "status": STATUSES.get(step.status, "UNKNOWN"),
            }
        }

    def frames(self, step: Reply, request: Recorded) -> list[bytes]:
        model = request.path.rsplit("/", 1)[-1].split(":", 1)[0]

        def response(parts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
            return {
                "candidates": [{"content": {"parts": parts, "role": "model"}, "index": 0, **extra}],
                "modelVersion": model,
            }

        items = [response([{"text": piece}]) for piece in step.text]
        if step.tool_calls:
            items.append(
                response(
                    [
                        {"functionCall": {"name": call["name"], "args": call.get("args", {})}}
                        for call in step.tool_calls
                    ]
                )
            )
        input_tokens, output_tokens = step.usage
        last = response([{"text": ""}], finishReason="STOP")
        last["usageMetadata"] = {
            "promptTokenCount": input_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": input_tokens + output_tokens,
        }
        items.append(last)
        frames = [
            (("[" if index == 0 else ",\r\n") + json.dumps(item)).encode()
            for index, item in enumerate(items)
        ]
        frames.append(b"]")
        return frames
