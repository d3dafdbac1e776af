"""Operating Confab, on live uvicorn servers: `/metrics` (Prometheus, several workers
through PROMETHEUS_MULTIPROC_DIR, behind a token), `/healthz` and `/readyz`, and JSON
log lines without tokens or prompts (docs/deploy.md, "Observability")."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tests.support.servers import LiveServer, database_url, free_port, launch_uvicorn

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

METRICS_TOKEN = "metrics-secret-0123456789"


def scrape(server: LiveServer) -> dict[tuple[str, frozenset], float]:
    """Every sample of /metrics: {(name, labels): value}."""
    response = httpx.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples, name: str, **labels: str) -> float:
    """The sum of `name` over the samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def metrics_server(transactional_db, llm, tmp_path) -> Iterator[LiveServer]:
    """Two uvicorn workers sharing a PROMETHEUS_MULTIPROC_DIR. Started like
    `live_server_factory` does, with more patience: two workers importing Django at
    once on a loaded CI machine took 30 s."""
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    server = launch_uvicorn(
        LiveServer,
        settings="tests.settings",
        env={
            "DATABASE_URL": database_url(),
            "OPENAI_BASE_URL": llm.base_url,
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
            "CONFAB_METRICS_TOKEN": METRICS_TOKEN,
            "CONFAB_THROTTLE_LOGIN": "1/min",
        },
        log_dir=tmp_path,
        workers=2,
        startup_timeout=120.0,
    )
    yield server
    server.stop()


def test_metrics_need_the_token(metrics_server):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}):
        response = httpx.get(f"{metrics_server.url}/metrics", headers=headers, timeout=10)
        assert response.status_code == 404, headers
    assert scrape(metrics_server)


def test_a_turn_moves_its_series_across_workers(metrics_server, llm, token, conversation):
    url = f"{metrics_server.url}/api/v1/conversations/{conversation.pk}/messages/"
    auth = {"Authorization": f"Bearer {token}"}
    route = "/api/v1/conversations/<int:conversation_id>/messages/"
    before = scrape(metrics_server)
    assert value(before, "confab_turns_running") == 0

    # A slow reply: the running gauge shows it while it streams (whichever worker runs it).
    llm.reply_text(["one ", "two ", "three"], usage=(7, 3), chunk_delay=0.4)
    results: list[httpx.Response] = []
    sender = threading.Thread(
        target=lambda: results.append(
            httpx.post(url, json={"content": "Count"}, headers=auth, timeout=30)
        )
    )
    sender.start()
    until(lambda: value(scrape(metrics_server), "confab_turns_running") == 1, "a running turn")
    sender.join(30)
    assert results[0].status_code == 201, results[0].text
    after = scrape(metrics_server)

    assert value(after, "confab_turns_running") == 0
    assert value(after, "confab_turns_started_total") == 1
    assert value(after, "confab_turns_ended_total", status="complete", code="") == 1
    assert value(after, "confab_turn_time_to_first_token_seconds_count") == 1
    assert value(after, "confab_relay_lag_seconds_count") >= 1
    assert (
        value(after, "confab_provider_request_duration_seconds_count", provider="openai-chat") == 1
    )
    assert value(after, "confab_provider_tokens_total", provider="openai-chat", kind="input") == 7
    assert value(after, "confab_provider_tokens_total", provider="openai-chat", kind="output") == 3
    http = value(after, "confab_http_requests_total", route=route, method="POST", status="201")
    assert http == 1, sorted(labels for (name, labels) in after if "http_requests" in name)
    assert (
        value(after, "confab_http_request_duration_seconds_count", route=route, method="POST") == 1
    )

    # A failed reply: by status and code, and the provider's error.
    llm.reply_error(500)
    failed = httpx.post(url, json={"content": "Again"}, headers=auth, timeout=30)
    assert failed.json()["ai_message"]["status"] == "failed"
    after = scrape(metrics_server)
    assert value(after, "confab_turns_started_total") == 2
    assert value(after, "confab_turns_ended_total", status="failed", code="provider_error") == 1
    assert (
        value(after, "confab_provider_errors_total", provider="openai-chat", code="provider_error")
        == 1
    )
    if connection.vendor == "postgresql":
        # psycopg's pool of the workers (DB_POOL is on by default on PostgreSQL).
        assert value(after, "confab_db_pool_connections", state="size") >= 1


def test_open_websockets_and_refusals_are_counted(metrics_server, token, conversation):
    chat = f"{metrics_server.ws_url}/ws/conversations/{conversation.pk}/"
    with connect(chat, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
        assert json.loads(socket.recv(10))["type"] == "ready"
        until(
            lambda: value(scrape(metrics_server), "confab_websockets_open", kind="chat") == 1,
            "the open socket",
        )
    until(
        lambda: value(scrape(metrics_server), "confab_websockets_open", kind="chat") == 0,
        "the closed socket",
    )

    # Three bad logins against 1/min (a counter per worker without Redis): one is 429.
    login = f"{metrics_server.url}/api/v1/auth/token/"
    statuses = [
        httpx.post(login, json={"username": "x", "password": "y"}, timeout=10).status_code
        for _ in range(3)
    ]
    assert 429 in statuses
    refused = total(scrape(metrics_server), "confab_refusals_total", source="http")
    assert refused == statuses.count(429)
    samples = scrape(metrics_server)
    assert value(samples, "confab_refusals_total", source="http", code="RATE_LIMITED") >= 1


# --- health ----------------------------------------------------------------------------


def test_health_and_readiness(live_server_factory):
    server = live_server_factory()
    alive = httpx.get(f"{server.url}/healthz", timeout=10)
    assert alive.status_code == 200 and alive.json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert checks["database"] == "ok" and checks["migrations"] == "ok"
    assert checks.get("redis", "ok") == "ok"
    assert ready.headers["X-Request-ID"]


def test_readiness_names_the_backing_service_that_is_down(live_server_factory):
    closed = free_port()
    redis_down = live_server_factory(extra_env={"REDIS_URL": f"redis://127.0.0.1:{closed}/0"})
    answer = httpx.get(f"{redis_down.url}/readyz", timeout=15)
    assert answer.status_code == 503
    assert answer.json()["status"] == "unavailable"
    assert answer.json()["checks"]["redis"] == "down"
    assert answer.json()["checks"]["database"] == "ok"
    # Alive all the same: an orchestrator must not restart it for a Redis outage.
    assert httpx.get(f"{redis_down.url}/healthz", timeout=10).status_code == 200

    database_down = live_server_factory(
        extra_env={"DATABASE_URL": f"postgres://postgres@127.0.0.1:{closed}/confab"}
    )
    answer = httpx.get(f"{database_down.url}/readyz", timeout=15)
    assert answer.status_code == 503
    assert answer.json()["checks"]["database"] == "down"
    assert answer.json()["checks"]["migrations"] == "unknown"
    assert httpx.get(f"{database_down.url}/healthz", timeout=10).status_code == 200


# --- logs --------------------------------------------------------------------------------


def test_production_logs_are_json_lines_without_token_or_prompt(
    live_server_factory, llm, token, conversation
):
    server = live_server_factory(
        extra_env={"LOG_LEVEL": "DEBUG", "CONFAB_LOG_FORMAT": "json"},
        extra_args=["--access-log"],
    )
    prompt = "A private prompt 9e107d9d372bb682"
    llm.reply_error(500)
    url = f"{server.url}/api/v1/conversations/{conversation.pk}/messages/"
    response = httpx.post(
        f"{url}?token={token}",
        json={"content": prompt},
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-live-1"},
        timeout=30,
    )
    assert response.status_code == 201 and response.headers["X-Request-ID"] == "req-live-1"
    server.stop()

    lines = [line for line in server.log().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]  # every line is JSON
    assert {"time", "level", "logger", "message", "request_id"} <= set(parsed[-1])
    turn = [line for line in parsed if line["message"].startswith("Turn ")]
    assert turn and all(line["request_id"] == "req-live-1" for line in turn)
    assert any(line["logger"] == "uvicorn.access" for line in parsed)
    text = server.log()
    assert token not in text and token[:16] not in text
    assert prompt not in text and "9e107d9d372bb682" not in text


# --- traces ------------------------------------------------------------------------------


class Collector:
    """A minimal OTLP/HTTP trace receiver on 127.0.0.1: keeps every exported span."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        self.spans: list = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    for scope_spans in resource_spans.scope_spans:
                        collector.spans.extend(scope_spans.spans)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def named(self, predicate: Callable[[str], bool]) -> list:
        return [span for span in list(self.spans) if predicate(span.name)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def attributes(span) -> dict:
    found = {}
    for item in span.attributes:
        value = item.value
        found[item.key] = getattr(value, value.WhichOneof("value"))
    return found


def test_traces_are_exported_by_otlp_when_configured(live_server_factory, llm, token, conversation):
    collector = Collector()
    try:
        server = live_server_factory(
            extra_env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
                "OTEL_SERVICE_NAME": "confab-test",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
            }
        )
        llm.reply_text(["Hi ", "there"], usage=(5, 2))
        url = f"{server.url}/api/v1/conversations/{conversation.pk}/messages/"
        response = httpx.post(
            url, json={"content": "Hello"}, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        assert response.status_code == 201, response.text
        until(lambda: collector.named(lambda name: name.startswith("chat")), "the provider span")
        until(lambda: collector.named(lambda name: name.startswith("POST")), "the request span")

        (turn,) = collector.named(lambda name: name == "confab.turn")
        (chat,) = collector.named(lambda name: name.startswith("chat"))
        (request,) = collector.named(lambda name: name.startswith("POST api/v1/conversations"))
        # request (Django's instrumentation) -> turn -> provider call, one trace.
        assert turn.parent_span_id == request.span_id
        assert chat.parent_span_id == turn.span_id
        assert request.trace_id == turn.trace_id == chat.trace_id
        assert attributes(chat)["gen_ai.usage.input_tokens"] == 5
        assert attributes(chat)["gen_ai.usage.output_tokens"] == 2
        assert attributes(turn)["confab.turn.status"] == "complete"
        # The database work of the request is traced too (psycopg on PostgreSQL; SQLite
        # has no instrumentation here), and nothing carries the prompt.
        if connection.vendor == "postgresql":
            assert any(
                span.trace_id == request.trace_id
                for span in collector.named(
                    lambda name: (
                        name not in ("confab.turn",) and not name.startswith(("chat", "POST"))
                    )
                )
            )
        assert b"Hello" not in b"".join(span.SerializeToString() for span in collector.spans)
    finally:
        collector.close()
