"""Prometheus metrics: the series, the hooks that move them, and `/metrics`.

The domain does not import prometheus: the turn engine calls the `turn_*` /
`provider_*` hooks here (one line each where a turn starts and ends, around the
provider call), the surfaces are measured from outside (Django middleware for HTTP,
an ASGI wrapper for websockets), and the channel layer's failures are counted where
`conversations.events` already records them.

Several uvicorn workers: set `PROMETHEUS_MULTIPROC_DIR` to an empty directory
before the server starts (every worker writes its samples there; the one that
answers `/metrics` adds them all up; gauges of dead workers are dropped when they
exit). Without it, `/metrics` shows the answering process only (fine for one worker).

`/metrics` is not public: with `CONFAB_METRICS_TOKEN` set it answers only
`Authorization: Bearer <token>`; unset, it is served in DEBUG and 404 otherwise
(a wrong or missing token is a 404 too: the endpoint does not advertise itself).
"""

from __future__ import annotations

import hmac
import os
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotFound
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from core.async_middleware import AsyncCapableMiddleware

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
_PROVIDER_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)

HTTP_REQUESTS = Counter(
    "confab_http_requests",
    "HTTP requests answered, by route pattern, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "confab_http_request_duration_seconds",
    "Time to the response (its headers, for a streamed one), by route pattern and method.",
    ["route", "method"],
    buckets=_LATENCY_BUCKETS,
)
REFUSALS = Counter(
    "confab_refusals",
    "Requests and turns refused for load or limits: HTTP 429/503 answers (source=http) and "
    "turns refused by the per-process cap (source=turn_admission), by error code.",
    ["source", "code"],
)
TURNS_STARTED = Counter("confab_turns_started", "Turns started in this process.")
TURNS_ENDED = Counter(
    "confab_turns_ended",
    "Turns ended, by final status (complete, failed, cancelled, lost, interrupted) and "
    "failure code (empty unless failed).",
    ["status", "code"],
)
TURNS_RUNNING = Gauge("confab_turns_running", "Turns running now.", multiprocess_mode="livesum")
TIME_TO_FIRST_TOKEN = Histogram(
    "confab_turn_time_to_first_token_seconds",
    "From the start of a turn to the first text of its reply.",
    buckets=_PROVIDER_BUCKETS,
)
RELAY_LAG = Histogram(
    "confab_relay_lag_seconds",
    "From a token's arrival from the provider to its delta being published to clients "
    "(delta batching included).",
    buckets=_LAG_BUCKETS,
)
PROVIDER_LATENCY = Histogram(
    "confab_provider_request_duration_seconds",
    "One provider call (a streamed reply, start to end), by provider.",
    ["provider"],
    buckets=_PROVIDER_BUCKETS,
)
PROVIDER_ERRORS = Counter(
    "confab_provider_errors",
    "Provider calls that failed, by provider and failure code.",
    ["provider", "code"],
)
PROVIDER_TOKENS = Counter(
    "confab_provider_tokens",
    "Tokens reported by providers, by provider and kind (input, output).",
    ["provider", "kind"],
)
WEBSOCKETS_OPEN = Gauge(
    "confab_websockets_open",
    "Accepted websockets open now, by kind (chat, graphql).",
    ["kind"],
    multiprocess_mode="livesum",
)
PUBLISH_FAILURES = Counter(
    "confab_channel_layer_publish_failures",
    "Events the channel layer failed to publish, by event type.",
    ["event"],
)
DB_POOL = Gauge(
    "confab_db_pool_connections",
    "psycopg pool per process: connections open (size), idle (available), and requests "
    "waiting for one (waiting).",
    ["state"],
    multiprocess_mode="livesum",
)

_POOL_REFRESH_SECONDS = 1.0
_pool_refreshed_at = 0.0


# --- Hooks for the turn engine ------------------------------------------------


def turn_started() -> float:
    """A turn started; returns its start time (for time-to-first-token)."""
    TURNS_STARTED.inc()
    TURNS_RUNNING.inc()
    return time.monotonic()


def turn_ended(status: str, code: str = "") -> None:
    TURNS_RUNNING.dec()
    TURNS_ENDED.labels(status=status, code=code).inc()


def turn_refused(code: str) -> None:
    REFUSALS.labels(source="turn_admission", code=code).inc()


def first_token(turn_started_at: float) -> None:
    TIME_TO_FIRST_TOKEN.observe(max(0.0, time.monotonic() - turn_started_at))


def relayed(token_arrived_at: float) -> None:
    RELAY_LAG.observe(max(0.0, time.monotonic() - token_arrived_at))


def provider_call(
    provider: str, seconds: float, error_code: str | None, usage: dict[str, Any] | None
) -> None:
    PROVIDER_LATENCY.labels(provider=provider).observe(seconds)
    if error_code:
        PROVIDER_ERRORS.labels(provider=provider, code=error_code).inc()
    for kind in ("input", "output"):
        count = (usage or {}).get(f"{kind}_tokens")
        if count:
            PROVIDER_TOKENS.labels(provider=provider, kind=kind).inc(count)


def publish_failed(event_type: str) -> None:
    PUBLISH_FAILURES.labels(event=event_type).inc()


# --- Database pool -------------------------------------------------------------


def refresh_pool_gauges(force: bool = False) -> None:
    """Copy the psycopg pool's stats into DB_POOL (at most once a second unless forced)."""
    global _pool_refreshed_at
    now = time.monotonic()
    if not force and now - _pool_refreshed_at < _POOL_REFRESH_SECONDS:
        return
    _pool_refreshed_at = now
    try:
        from django.db.backends.postgresql.base import DatabaseWrapper
    except ImportError:  # pragma: no cover - psycopg is always installed here
        return
    pool = DatabaseWrapper._connection_pools.get("default")
    if pool is None:
        return
    stats = pool.get_stats()
    DB_POOL.labels(state="size").set(stats.get("pool_size", 0))
    DB_POOL.labels(state="available").set(stats.get("pool_available", 0))
    DB_POOL.labels(state="waiting").set(stats.get("requests_waiting", 0))


# --- HTTP ------------------------------------------------------------------------


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None or not match.route:
        return "<unmatched>"
    return "/" + match.route


def _observe_http(request: HttpRequest, response: HttpResponseBase, started: float) -> None:
    route = _route(request)
    HTTP_LATENCY.labels(route=route, method=request.method).observe(time.monotonic() - started)
    HTTP_REQUESTS.labels(route=route, method=request.method, status=response.status_code).inc()
    if response.status_code in (429, 503):
        code = getattr(response, "confab_error_code", None) or str(response.status_code)
        REFUSALS.labels(source="http", code=code).inc()
    refresh_pool_gauges()


class HttpMetricsMiddleware(AsyncCapableMiddleware):
    """Count and time every HTTP request by its route pattern (not its path: bounded
    label values). Async-capable: no thread hop per request."""

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        started = time.monotonic()
        response = self.get_response(request)
        _observe_http(request, response, started)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        started = time.monotonic()
        response = await self.get_response(request)
        _observe_http(request, response, started)
        return response


# --- Websockets ------------------------------------------------------------------


def _websocket_kind(path: str) -> str:
    if path.startswith("/graphql"):
        return "graphql"
    if path.startswith("/ws/conversations"):
        return "chat"
    return "other"


class WebsocketMetricsMiddleware:
    """ASGI: count accepted websockets open now, by kind."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        gauge = WEBSOCKETS_OPEN.labels(kind=_websocket_kind(scope.get("path", "")))
        state = {"open": False}

        def closed() -> None:
            if state["open"]:
                state["open"] = False
                gauge.dec()

        async def counting_send(message: dict) -> None:
            if message["type"] == "websocket.accept" and not state["open"]:
                state["open"] = True
                gauge.inc()
            await send(message)
            if message["type"] == "websocket.close":
                closed()

        async def counting_receive() -> dict:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                closed()
            return message

        try:
            return await self.app(scope, counting_receive, counting_send)
        finally:
            closed()


# --- /metrics ----------------------------------------------------------------------


def _authorized(request: HttpRequest) -> bool:
    token = settings.CONFAB_METRICS_TOKEN
    if not token:
        return settings.DEBUG
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip(), token)


def render() -> bytes:
    """Every series in Prometheus' text format (all workers' under multiprocess mode)."""
    refresh_pool_gauges(force=True)
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics (see the module's docstring for who may read it)."""
    if not _authorized(request):
        return HttpResponseNotFound()
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)


def process_exited(pid: int | None = None) -> None:
    """Drop a finished worker's live gauges (call at shutdown under multiprocess mode)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid or os.getpid())
