"""OpenTelemetry traces, and the turn engine's observation hooks (spans + metrics).

Off by default. With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) set,
`configure_from_env()` (called by backend/asgi.py before Django loads its
middleware) installs an SDK tracer provider exporting by OTLP over HTTP (the
standard `OTEL_*` variables apply: service name, headers, sampler) and the
maintained instrumentations for Django, psycopg, redis and httpx. Without it the
API's no-op tracer runs: spans cost a function call.

The engine calls two context managers here, one line each:
- `turn(...)` around a turn: span `confab.turn` (conversation, turn, final status,
  failure code), the turn counters and the running gauge, and the clock for
  time-to-first-token;
- `provider_call(...)` around one streamed provider call: span `chat <model>` with
  the GenAI attributes (`gen_ai.system`, `gen_ai.request.model`,
  `gen_ai.usage.input_tokens` / `output_tokens`), provider latency, errors and
  tokens. Neither records a prompt, a reply or an exception's text: only codes.

A turn runs in a fresh context (STACK.md #14); `carry_into` copies the current
trace into it, so a turn's span is a child of the request that started it.
"""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from core import metrics

tracer = trace.get_tracer("confab")

_configured = False


def configure_from_env() -> bool:
    """Export traces by OTLP when an endpoint is configured; returns whether it did."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    if not endpoint or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    configure(BatchSpanProcessor(OTLPSpanExporter()))
    return True


def configure(span_processor: Any) -> None:
    """Install an SDK tracer provider with `span_processor` and instrument the libraries.

    Once per process (OpenTelemetry's global provider can be set once); tests pass a
    SimpleSpanProcessor over an InMemorySpanExporter.
    """
    global _configured
    if _configured:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    service = os.environ.get("OTEL_SERVICE_NAME", "confab")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(span_processor)
    trace.set_tracer_provider(provider)
    _instrument_libraries()
    _configured = True


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    # The SQL comment that carries the trace id is off: it would defeat prepared
    # statements and PgBouncer's statement cache, and put ids in pg_stat_statements.
    for instrumentor, options in (
        (DjangoInstrumentor(), {}),
        (PsycopgInstrumentor(), {"enable_commenter": False}),
        (RedisInstrumentor(), {}),
        (HTTPXClientInstrumentor(), {}),
    ):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(**options)


def carry_into(context: contextvars.Context) -> None:
    """Make the current trace (span) the parent of what runs in `context`."""
    context.run(otel_context.attach, otel_context.get_current())


# --- The turn engine's hooks --------------------------------------------------------


@dataclass
class _TurnClock:
    started: float = field(default_factory=time.monotonic)
    first_token_seen: bool = False


_turn_clock: contextvars.ContextVar[_TurnClock | None] = contextvars.ContextVar(
    "confab_turn_clock", default=None
)


@dataclass
class TurnObservation:
    """What `turn()` records when the turn ends: set `status` (and `code` if failed)."""

    status: str = "interrupted"
    code: str = ""

    def ended(self, message: Any) -> None:
        """The turn's final AI message (None: the turn lost its lock)."""
        if message is None:
            self.status = "lost"
            return
        self.status = str(message.status)
        error = getattr(message, "error", None)
        self.code = (error or {}).get("code", "") if isinstance(error, dict) else ""


@contextmanager
def turn(*, conversation_id: int, turn_id: Any) -> Iterator[TurnObservation]:
    """Observe one turn: its span, counters, running gauge and first-token clock."""
    observation = TurnObservation()
    metrics.turn_started()
    clock_token = _turn_clock.set(_TurnClock())
    attributes = {"confab.conversation_id": conversation_id, "confab.turn_id": str(turn_id)}
    with tracer.start_as_current_span(
        "confab.turn", attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        try:
            yield observation
        finally:
            _turn_clock.reset(clock_token)
            metrics.turn_ended(observation.status, observation.code)
            span.set_attribute("confab.turn.status", observation.status)
            if observation.code:
                span.set_attribute("confab.error_code", observation.code)
                span.set_status(Status(StatusCode.ERROR, observation.code))


def token_relayed(token_arrived_at: float) -> None:
    """A delta was published: relay lag, and the turn's time to first token (once)."""
    metrics.relayed(token_arrived_at)
    clock = _turn_clock.get()
    if clock is not None and not clock.first_token_seen:
        clock.first_token_seen = True
        metrics.first_token(clock.started)


@dataclass
class ProviderCall:
    provider: str
    model: str
    span: Any
    usage: dict[str, Any] | None = None

    def record_usage(self, message: Any) -> None:
        """Token counts from the reply's `usage_metadata` (LangChain), when reported."""
        usage = getattr(message, "usage_metadata", None) or None
        if not usage:
            return
        self.usage = dict(usage)
        for kind in ("input", "output", "total"):
            if usage.get(f"{kind}_tokens") is not None:
                self.span.set_attribute(f"gen_ai.usage.{kind}_tokens", usage[f"{kind}_tokens"])


def describe_model(model: Any) -> tuple[str, str]:
    """(provider, model name) of a LangChain chat model, tool-bound or not."""
    bound = getattr(model, "bound", model)
    try:
        provider = str(bound._llm_type)
    except Exception:  # noqa: BLE001 - any model without a type
        provider = type(bound).__name__
    name = getattr(bound, "model_name", None) or getattr(bound, "model", None) or ""
    return provider, str(name)


@contextmanager
def provider_call(
    model: Any,
    *,
    classify: Callable[[BaseException], tuple[str, str]],
    not_failures: tuple[type[BaseException], ...] = (),
) -> Iterator[ProviderCall]:
    """Observe one provider call: span `chat <model>`, latency, errors by code, tokens."""
    provider, name = describe_model(model)
    attributes = {"gen_ai.operation.name": "chat", "gen_ai.system": provider}
    if name:
        attributes["gen_ai.request.model"] = name
    started = time.monotonic()
    error_code = None
    with tracer.start_as_current_span(
        f"chat {name}".strip(),
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        call = ProviderCall(provider=provider, model=name, span=span)
        try:
            yield call
        except not_failures:
            raise
        except BaseException as exc:
            # CancelledError (not an Exception): the process is shutting down.
            error_code = classify(exc)[0] if isinstance(exc, Exception) else "interrupted"
            span.set_attribute("confab.error_code", error_code)
            span.set_status(Status(StatusCode.ERROR, error_code))
            raise
        finally:
            metrics.provider_call(provider, time.monotonic() - started, error_code, call.usage)
