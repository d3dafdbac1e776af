"""What observability adds per HTTP request, and per turn, in CPU: `python -m bench.observability`.

In-process, no server: the same trivial async view called N times bare and through
`core.metrics.HttpMetricsMiddleware` + `core.request_id.RequestIdMiddleware` (the two
middleware this adds to every request), rounds interleaved so machine noise hits both
alike; and the turn hooks (`core.tracing.turn` + `provider_call`, no-op tracer as in
production without OTLP) against an empty context manager. Prints microseconds per
call and the difference. Recorded in bench/BENCHMARKS.md ("Observability").
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.http import JsonResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.urls import resolve  # noqa: E402

from conversations.turns.failures import classify_failure  # noqa: E402
from core import metrics, request_id, tracing  # noqa: E402
from core.metrics import HttpMetricsMiddleware  # noqa: E402
from core.request_id import RequestIdMiddleware  # noqa: E402

N = 20_000
ROUNDS = 5


async def view(request):
    request.resolver_match = MATCH
    return JsonResponse({"status": "ok"})


async def not_found(request):
    request.resolver_match = MATCH
    return JsonResponse({"type": "not_found", "code": "NOT_FOUND", "detail": "No."}, status=404)


MATCH = resolve("/healthz")


async def run(handler, requests) -> float:
    started = time.perf_counter()
    for request in requests:
        await handler(request)
    return (time.perf_counter() - started) / len(requests) * 1e6


class FakeModel:
    _llm_type = "openai-chat"
    model_name = "gpt-4o"


async def hooks(observed: bool) -> float:
    started = time.perf_counter()
    for _ in range(N):
        if observed:
            with tracing.turn(conversation_id=1, turn_id="t") as turn:
                with tracing.provider_call(FakeModel(), classify=classify_failure) as call:
                    call.record_usage(None)
                tracing.token_relayed(time.monotonic())
                turn.status = "complete"
        else:
            with contextlib.nullcontext(), contextlib.nullcontext():
                pass
    return (time.perf_counter() - started) / N * 1e6


async def main() -> None:
    factory = RequestFactory()
    requests = [factory.get("/healthz") for _ in range(N)]
    bare, wrapped = view, HttpMetricsMiddleware(RequestIdMiddleware(view))
    bare_404, wrapped_404 = not_found, HttpMetricsMiddleware(RequestIdMiddleware(not_found))
    results: dict[str, list[float]] = {}
    for _ in range(ROUNDS):
        for name, handler in (
            ("200 bare", bare),
            ("200 observed", wrapped),
            ("404 bare", bare_404),
            ("404 observed (request_id added to the body)", wrapped_404),
        ):
            results.setdefault(name, []).append(await run(handler, requests))
        results.setdefault("turn hooks: none", []).append(await hooks(False))
        results.setdefault("turn hooks: turn + provider_call + relay", []).append(await hooks(True))
    print(f"load average before the end: {os.getloadavg()[0]:.1f}; N={N}, best of {ROUNDS}")
    for name, values in results.items():
        print(f"{name:50s} {min(values):8.1f} us/call")
    best = {name: min(values) for name, values in results.items()}
    added = {
        "added per 200 request": best["200 observed"] - best["200 bare"],
        "added per 404 request": best["404 observed (request_id added to the body)"]
        - best["404 bare"],
        "added per turn (hooks)": best["turn hooks: turn + provider_call + relay"]
        - best["turn hooks: none"],
    }
    for name, value in added.items():
        print(f"{name:50s} {value:8.1f} us")
    assert request_id and metrics


if __name__ == "__main__":
    asyncio.run(main())
