"""The codec stores LangChain messages in the seed's shape, losslessly."""

# ruff: noqa: RUF001 - the seed's Chinese text has full-width punctuation

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from conversations.codec import (
    CodecError,
    decode_message,
    encode_message,
    normalize_tool_output,
    role_of,
    text_of,
    usage_of,
)

# Copies of ../shared/seed rows, byte for byte.
SEED = Path(__file__).resolve().parents[1] / "fixtures" / "seed"


def seed_row(name: str) -> dict:
    return json.loads((SEED / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["human_message.json", "ai_message.json"])
def test_seed_rows_round_trip_exactly(name):
    row = seed_row(name)
    message = decode_message(row)
    assert encode_message(message) == row
    # Stored as JSON text, the row survives too.
    assert json.loads(json.dumps(encode_message(message), ensure_ascii=False)) == row


def test_seed_ai_row_columns():
    message = decode_message(seed_row("ai_message.json"))
    assert isinstance(message, AIMessage)
    assert role_of(message) == "ai"
    assert text_of(message) == "你好，请问我可以帮你点什么咖啡吗？"
    assert usage_of(message) == {"input_tokens": 139, "output_tokens": 14, "total_tokens": 153}
    assert role_of(decode_message(seed_row("human_message.json"))) == "human"


def test_unknown_or_malformed_rows_are_refused():
    with pytest.raises(CodecError):
        decode_message({"_type": "os.system", "_value": {}})
    with pytest.raises(CodecError):
        decode_message({"_type": "AIMessage"})
    with pytest.raises(CodecError):
        decode_message(["not", "a", "row"])
    with pytest.raises(CodecError):
        decode_message({"_type": "AIMessage", "_value": {"content": 3}})


def test_image_list_content_of_the_origin_round_trips():
    message = HumanMessage(
        content=[
            {"type": "text", "text": "이 그림은 뭐예요?"},
            {
                "type": "image_url",
                "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "auto"},
            },
        ]
    )
    assert decode_message(encode_message(message)) == message
    assert text_of(message) == "이 그림은 뭐예요?"


def test_chunk_with_tool_calls_round_trips():
    chunk = AIMessageChunk(
        content="",
        tool_call_chunks=[
            {"name": "calculator", "args": '{"expression": "1+', "id": "c1", "index": 0}
        ],
    ) + AIMessageChunk(content="", tool_call_chunks=[{"args": '2"}', "index": 0}])
    decoded = decode_message(encode_message(chunk))
    assert decoded == chunk
    assert decoded.tool_calls[0]["args"] == {"expression": "1+2"}


def test_tool_message_keeps_tool_call_id_and_artifact():
    message = ToolMessage(
        content="[]",
        tool_call_id="call-9",
        name="multiplication_table",
        artifact={"kind": "table", "columns": ["a"], "records": [{"a": 1}]},
        status="success",
    )
    decoded = decode_message(encode_message(message))
    assert decoded == message
    assert decoded.tool_call_id == "call-9"
    assert role_of(decoded) == "tool"


# --- property-based round trips ---------------------------------------------

texts = st.text(max_size=200)
json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
kwargs_dicts = st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=3)
ids = st.none() | st.text(min_size=1, max_size=30)
tool_calls = st.lists(
    st.builds(
        lambda name, args, call_id: {
            "name": name,
            "args": args,
            "id": call_id,
            "type": "tool_call",
        },
        st.text(min_size=1, max_size=20),
        st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=3),
        st.text(min_size=1, max_size=20),
    ),
    max_size=3,
)
usage = st.none() | st.builds(
    lambda i, o: {"input_tokens": i, "output_tokens": o, "total_tokens": i + o},
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)

messages = st.one_of(
    st.builds(SystemMessage, content=texts, additional_kwargs=kwargs_dicts, id=ids),
    st.builds(
        HumanMessage,
        content=texts,
        additional_kwargs=kwargs_dicts,
        response_metadata=kwargs_dicts,
        id=ids,
        name=st.none() | st.text(min_size=1, max_size=10),
    ),
    st.builds(
        AIMessage,
        content=texts,
        additional_kwargs=kwargs_dicts,
        response_metadata=kwargs_dicts,
        tool_calls=tool_calls,
        usage_metadata=usage,
        id=ids,
    ),
    st.builds(
        ToolMessage,
        content=texts,
        tool_call_id=st.text(min_size=1, max_size=20),
        artifact=json_values,
        status=st.sampled_from(["success", "error"]),
    ),
)


@settings(max_examples=150, deadline=None)
@given(messages)
def test_any_message_round_trips_through_json(message):
    stored = json.loads(json.dumps(encode_message(message), ensure_ascii=False))
    assert decode_message(stored) == message
    assert encode_message(decode_message(stored)) == stored


# --- tool outputs -------------------------------------------------------------


def fake_saver(saved: list):
    def save(data: bytes, name: str, mime_type: str) -> dict:
        saved.append(data)
        return {"kind": "file", "name": name, "mime_type": mime_type, "size": len(data)}

    return save


def test_origin_dataframe_becomes_records():
    frame = {
        "_type": "DataFrame",
        "_value": {"name": {"0": "茶", "1": "커피"}, "price": {"0": 3, "1": 4}},
    }
    output = normalize_tool_output(frame, fake_saver([]))
    assert output == {
        "kind": "table",
        "columns": ["name", "price"],
        "records": [{"name": "茶", "price": 3}, {"name": "커피", "price": 4}],
    }


def test_records_become_a_table_and_bytes_a_file_reference():
    saved: list = []
    assert normalize_tool_output([{"a": 1}, {"b": 2}], fake_saver(saved))["columns"] == ["a", "b"]
    reference = normalize_tool_output(
        {"_type": "bytes", "_value": base64.b64encode(b"\x89PNG").decode()}, fake_saver(saved)
    )
    assert reference["kind"] == "file" and saved == [b"\x89PNG"]
    big_data_url = "data:image/png;base64," + base64.b64encode(b"x" * 10_000).decode()
    assert normalize_tool_output(big_data_url, fake_saver(saved))["mime_type"] == "image/png"
    assert normalize_tool_output("plain", fake_saver(saved)) == "plain"
    assert normalize_tool_output(42, fake_saver(saved)) == {"kind": "json", "value": 42}
