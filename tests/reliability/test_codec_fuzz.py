"""Hostile stored rows: the codec loads a message of an allowed class or refuses cleanly.

`tests/conversations/test_codec.py` proves that every message round-trips. This
file feeds `decode_message` what a corrupted or tampered row could hold: any
JSON value, rows naming classes that are not messages, LangChain's own
serialization format (which can name any class), and every allowed class
with arbitrary field values. The answer is always a message of the named
allowed class, or `CodecError`; never another exception, never another class.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import BaseMessage

from conversations.codec import MESSAGE_CLASSES, CodecError, decode_message, encode_message

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=25,
)
field_names = st.sampled_from(
    [
        "content",
        "type",
        "id",
        "name",
        "tool_calls",
        "invalid_tool_calls",
        "tool_call_id",
        "usage_metadata",
        "response_metadata",
        "additional_kwargs",
        "artifact",
        "status",
        "role",
        "example",
        "lc",
        "__class__",
    ]
) | st.text(max_size=12)
values_of_allowed_classes = st.fixed_dictionaries(
    {"_type": st.sampled_from(sorted(MESSAGE_CLASSES))},
    optional={"_value": st.dictionaries(field_names, json_values, max_size=6)},
)
FOREIGN_TYPES = [
    "os.system",
    "builtins.eval",
    "subprocess.Popen",
    "PromptTemplate",
    "langchain_core.prompts.PromptTemplate",
    "BaseMessage",
    "BaseMessageChunk",
    "RemoveMessage",
    "DataFrame",
    "__import__",
    "",
]
foreign_rows = st.fixed_dictionaries(
    {
        "_type": st.sampled_from(FOREIGN_TYPES) | st.text(max_size=30),
        "_value": st.dictionaries(field_names, json_values, max_size=4),
    }
)
# LangChain's own serialized-object format names a class by import path.
lc_constructors = st.fixed_dictionaries(
    {
        "_type": st.sampled_from(sorted(MESSAGE_CLASSES)),
        "_value": st.fixed_dictionaries(
            {
                "lc": st.just(1),
                "type": st.sampled_from(["constructor", "secret", "not_implemented"]),
                "id": st.lists(
                    st.sampled_from(["os", "system", "langchain", "schema"]), max_size=4
                ),
                "kwargs": st.dictionaries(st.text(max_size=8), json_values, max_size=3),
            }
        ),
    }
)


def decodes_cleanly(row: object) -> None:
    try:
        message = decode_message(row)  # type: ignore[arg-type]
    except CodecError:
        return
    assert isinstance(message, BaseMessage)
    assert type(message) is MESSAGE_CLASSES[row["_type"]]  # type: ignore[index]
    # What loaded can be stored again, and loads back the same.
    stored = json.loads(json.dumps(encode_message(message)))
    assert decode_message(stored) == message


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value(row):
    decodes_cleanly(row)


@settings(max_examples=400, deadline=None)
@given(values_of_allowed_classes)
def test_allowed_classes_with_arbitrary_fields(row):
    decodes_cleanly(row)


@settings(max_examples=200, deadline=None)
@given(foreign_rows | lc_constructors)
def test_foreign_classes_and_serialized_constructors(row):
    decodes_cleanly(row)
    if row["_type"] not in MESSAGE_CLASSES:
        try:
            decode_message(row)
        except CodecError:
            return
        raise AssertionError(f"{row['_type']!r} was loaded")
