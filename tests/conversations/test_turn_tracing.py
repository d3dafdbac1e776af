"""A turn's OpenTelemetry spans (core/tracing.py), read from an in-memory exporter.

The tracer provider is the process's global one (OpenTelemetry sets it once), so
this module installs it once, without instrumenting libraries: the spans checked
are Confab's own, under a parent span that stands for the request.
"""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from conversations.turns import start_turn, wait_for_result
from tests.support.turns import turn_cleanup  # noqa: F401 - autouse fixture

pytestmark = pytest.mark.django_db(transaction=True)

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans():
    """The in-memory exporter, emptied, on the global tracer provider."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    if not getattr(provider, "_confab_test_exporter", False):
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        provider._confab_test_exporter = True
    _EXPORTER.clear()
    return _EXPORTER


def by_name(finished, name):
    found = [span for span in finished if span.name == name]
    assert len(found) == 1, [span.name for span in finished]
    return found[0]


async def test_a_turn_is_a_span_with_its_provider_call_under_the_request(spans, llm, conversation):
    llm.reply_text(["Bon", "jour"], usage=(11, 3))
    tracer = trace.get_tracer("tests")

    with tracer.start_as_current_span("request"):
        handle = await start_turn(conversation=conversation, content="Say hello in French")
    result = await wait_for_result(handle)
    assert result.ai_message.status == "complete"

    finished = spans.get_finished_spans()
    request = by_name(finished, "request")
    turn = by_name(finished, "confab.turn")
    chat = next(span for span in finished if span.name.startswith("chat"))
    # The tree: request -> turn -> provider call (the turn runs in a task of its own).
    assert turn.parent is not None and turn.parent.span_id == request.context.span_id
    assert chat.parent is not None and chat.parent.span_id == turn.context.span_id
    assert turn.context.trace_id == request.context.trace_id == chat.context.trace_id
    assert turn.attributes["confab.conversation_id"] == conversation.pk
    assert turn.attributes["confab.turn_id"] == str(handle.turn_id)
    assert turn.attributes["confab.turn.status"] == "complete"
    assert chat.attributes["gen_ai.system"] == "openai-chat"
    assert chat.attributes["gen_ai.request.model"]
    assert chat.attributes["gen_ai.usage.input_tokens"] == 11
    assert chat.attributes["gen_ai.usage.output_tokens"] == 3
    assert chat.status.status_code == StatusCode.UNSET
    # Neither the prompt nor the reply is recorded.
    for span in (turn, chat):
        assert "Say hello" not in repr(dict(span.attributes))
        assert "Bonjour" not in repr(dict(span.attributes))
        assert not span.events


async def test_a_failed_provider_call_is_an_error_span_with_its_code(spans, llm, conversation):
    llm.reply_error(500)

    handle = await start_turn(conversation=conversation, content="Hi")
    result = await wait_for_result(handle)
    assert result.ai_message.status == "failed"

    finished = spans.get_finished_spans()
    turn = by_name(finished, "confab.turn")
    chat = next(span for span in finished if span.name.startswith("chat"))
    assert chat.parent.span_id == turn.context.span_id
    assert chat.status.status_code == StatusCode.ERROR
    assert chat.attributes["confab.error_code"] == "provider_error"
    assert turn.attributes["confab.turn.status"] == "failed"
    assert turn.attributes["confab.error_code"] == "provider_error"
    assert turn.status.status_code == StatusCode.ERROR
