"""Export -> import -> export keeps every message byte for byte (hypothesis), with new
ids; the documents are streamed in bounded chunks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from conversations.codec import encode_message
from conversations.exports import documents
from conversations.exports.imports import import_document
from conversations.exports.selectors import message_chunks
from tests.support.exports import stored_contents, without_ids

pytestmark = pytest.mark.django_db

# Text as clients may send it: no NUL, no lone surrogates (refused at the edge).
text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 3))
    | text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=10,
)
identifiers = st.text("abcdefghij_0123456789", min_size=1, max_size=12)
tool_calls = st.lists(
    st.fixed_dictionaries(
        {
            "name": identifiers,
            "args": st.dictionaries(text, json_values, max_size=3),
            "id": identifiers,
        }
    ),
    max_size=2,
)
messages = st.one_of(
    st.builds(lambda t: HumanMessage(content=t), text),
    st.builds(
        lambda t, extra: HumanMessage(
            content=[{"type": "text", "text": t}], additional_kwargs=extra
        ),
        text,
        st.dictionaries(text, json_values, max_size=2),
    ),
    st.builds(
        lambda t, calls, meta: AIMessage(content=t, tool_calls=calls, response_metadata=meta),
        text,
        tool_calls,
        st.dictionaries(text, json_values, max_size=3),
    ),
    st.builds(
        lambda t, call, artifact: ToolMessage(content=t, tool_call_id=call, artifact=artifact),
        text,
        identifiers,
        json_values,
    ),
    st.builds(lambda t: SystemMessage(content=t), text),
)
timestamps = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))


@st.composite
def exported_messages(draw: Any) -> list[dict[str, Any]]:
    rows = []
    for index, message in enumerate(draw(st.lists(messages, max_size=8))):
        row: dict[str, Any] = encode_message(message)
        row["status"] = draw(st.sampled_from(["complete", "failed", "cancelled"]))
        row["created_at"] = draw(timestamps).isoformat()
        row["model"] = draw(st.sampled_from(["", "gpt-4o"]))
        row["client_message_id"] = draw(st.none() | st.just(f"c-{index}"))
        row["turn_id"] = draw(st.none() | st.uuids().map(str))
        row["usage"] = draw(st.none() | st.fixed_dictionaries({"total_tokens": st.integers(0, 99)}))
        row["error"] = draw(st.none() | st.fixed_dictionaries({"code": identifiers}))
        if message.type == "ai":
            row["feedback"] = draw(
                st.none()
                | st.fixed_dictionaries(
                    {"rating": st.sampled_from(["up", "down"]), "comment": text}
                )
            )
        rows.append(row)
    return rows


def export_json(conversation: Any) -> dict[str, Any]:
    return json.loads(b"".join(documents.conversation_json(conversation)))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=exported_messages(), title=text, pinned=st.booleans())
def test_export_import_export_keeps_contents_byte_for_byte(user, plain_agent, rows, title, pinned):
    document = {
        "format": "confab.export",
        "version": 1,
        "conversations": [{"agent": "plain", "title": title, "pinned": pinned, "messages": rows}],
    }
    [first] = import_document(user=user, document=document)
    exported = export_json(first)
    sent = [{"_type": r["_type"], "_value": r["_value"]} for r in rows]
    got = exported["conversations"][0]["messages"]
    assert [{"_type": m["_type"], "_value": m["_value"]} for m in got] == sent

    [second] = import_document(user=user, document=exported)
    again = export_json(second)
    assert second.pk != first.pk
    assert without_ids(again) == without_ids(exported)
    assert stored_contents(second.pk) == stored_contents(first.pk)
    old_ids = {m["id"] for m in got}
    assert not old_ids & {m["id"] for m in again["conversations"][0]["messages"]}


def test_messages_are_read_in_bounded_chunks(user, conversation):
    from conversations.services import messages as message_services

    rows = [
        message_services.build_message(conversation=conversation, message=HumanMessage(f"m{i}"))
        for i in range(25)
    ]
    type(rows[0]).objects.bulk_create(rows)
    chunks = [len(chunk) for chunk, _ in message_chunks(conversation, size=10)]
    assert chunks == [10, 10, 5]
