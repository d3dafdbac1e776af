"""The websocket frame parser: any text is a Frame or a FrameError, never anything else."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.frames import FRAME_TYPES, Frame, FrameError, has_unstorable_text, parse_frame

MAX = 64_000

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
# Any code point, lone surrogates included (a websocket peer cannot send them,
# but the parser must not care).
any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=300)


def parse_or_error(text, max_bytes=MAX):
    try:
        frame = parse_frame(text, max_bytes=max_bytes)
    except FrameError as exc:
        assert exc.code in {
            "INVALID_FRAME",
            "INVALID_JSON",
            "FRAME_TOO_LARGE",
            "UNKNOWN_TYPE",
            "INVALID_TEXT",
        }
        assert exc.detail
        return exc
    assert isinstance(frame, Frame) and frame.type in FRAME_TYPES
    return frame


@settings(max_examples=500, deadline=None)
@given(any_text)
def test_any_text_is_a_frame_or_a_frame_error(text):
    parse_or_error(text)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_any_json_is_a_frame_or_a_frame_error(value):
    parse_or_error(json.dumps(value))


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(sorted(FRAME_TYPES)),
    st.dictionaries(st.text(max_size=10), json_values, max_size=4),
)
def test_objects_with_a_known_type_parse_or_fail_cleanly(frame_type, extra):
    data = {**extra, "type": frame_type}
    result = parse_or_error(json.dumps(data))
    if isinstance(result, Frame):
        assert result.type == frame_type
        assert json.dumps(result.data) == json.dumps(data)  # NaN != NaN
    elif result.code == "INVALID_TEXT":
        assert has_unstorable_text(data)
    else:
        # Frames with a required field: resume's after_id, the tool decisions' call_id,
        # edit's and branch's message_id.
        assert frame_type in ("resume", "tool.approve", "tool.deny", "edit", "branch")
        assert result.code == "INVALID_FRAME"


@pytest.mark.parametrize("frame_type", ["tool.approve", "tool.deny"])
@pytest.mark.parametrize("call_id", [None, "", 7, ["c1"], "x" * 201])
def test_tool_decisions_need_a_call_id(frame_type, call_id):
    result = parse_or_error(json.dumps({"type": frame_type, "call_id": call_id}))
    assert isinstance(result, FrameError) and result.code == "INVALID_FRAME"
    frame = parse_frame(json.dumps({"type": frame_type, "call_id": "c1"}), max_bytes=1000)
    assert frame.type == frame_type and frame.data["call_id"] == "c1"


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(2**70), max_value=2**70) | json_values)
def test_resume_takes_only_a_message_id(after_id):
    result = parse_or_error(json.dumps({"type": "resume", "after_id": after_id}))
    valid = type(after_id) is int and 0 <= after_id < 2**63
    assert isinstance(result, Frame) == valid


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (None, "INVALID_FRAME"),
        ("", "INVALID_JSON"),
        ("{", "INVALID_JSON"),
        ("[1, 2]", "INVALID_FRAME"),
        ('"message"', "INVALID_FRAME"),
        ("{}", "UNKNOWN_TYPE"),
        ('{"type": "delete_everything"}', "UNKNOWN_TYPE"),
        ('{"type": ["message"]}', "UNKNOWN_TYPE"),
        ('{"type": "resume", "after_id": "5"}', "INVALID_FRAME"),
        ('{"type": "resume", "after_id": true}', "INVALID_FRAME"),
        ('{"type": "resume", "after_id": -1}', "INVALID_FRAME"),
        ("[" * 50_000 + "]" * 50_000, "INVALID_JSON"),  # deeper than the recursion limit
        ('{"type": "ping", "n": ' + "9" * 5_000 + "}", "INVALID_JSON"),  # int digit limit
    ],
)
def test_bad_frames_have_stable_codes(text, code):
    with pytest.raises(FrameError) as info:
        parse_frame(text, max_bytes=200_000)
    assert info.value.code == code


def test_the_size_limit_counts_utf8_bytes():
    text = json.dumps({"type": "message", "content": "가" * 100}, ensure_ascii=False)
    assert len(text) < 200 < len(text.encode())
    with pytest.raises(FrameError) as info:
        parse_frame(text, max_bytes=200)
    assert info.value.code == "FRAME_TOO_LARGE"
    assert parse_frame(text, max_bytes=400).data["content"] == "가" * 100


def test_good_frames():
    assert parse_frame('{"type": "ping"}', max_bytes=MAX) == Frame("ping", {"type": "ping"})
    frame = parse_frame(
        '{"type": "message", "content": "hi", "client_message_id": "c1"}', max_bytes=MAX
    )
    assert frame.type == "message" and frame.data["content"] == "hi"
    assert parse_frame('{"type": "resume", "after_id": 0}', max_bytes=MAX).type == "resume"
    assert parse_frame('{"type": "resume"}', max_bytes=MAX).type == "resume"
