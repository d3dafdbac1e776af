"""The title request a model answers, and the cleaning of its answer (conversations/titles).

Provider-neutral and free of the database: the demo model (conversations/llm/demo.py)
recognizes the request by its instructions and answers it offline.
"""

from __future__ import annotations

import re

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

TITLE_INSTRUCTIONS = (
    "You name chat conversations. Reply with a short title for the conversation below: "
    "at most six words, in the language of the user's message, no quotes, no final "
    "punctuation, nothing else."
)
# How much of the first exchange the model reads: a title needs the gist, not the text
# (and the request stays small whatever was pasted into the chat).
EXCERPT_CHARS = 1_000
USER_LABEL = "The user wrote:\n"
REPLY_LABEL = "\n\nThe assistant answered:\n"

# Quotes (typographic ones too: \u2018-\u201e) and markdown a model wraps a title in.
_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb\u201e\u201a*_#"
_PREFIX = re.compile(r"^(?:title|titel|titre|título)\s*[:\uff1a-]\s*", re.IGNORECASE)


def title_request(user_text: str, reply_text: str) -> list[BaseMessage]:
    """The messages asking for a title of the exchange `user_text` -> `reply_text`."""
    return [
        SystemMessage(content=TITLE_INSTRUCTIONS),
        HumanMessage(
            content=USER_LABEL
            + user_text[:EXCERPT_CHARS]
            + REPLY_LABEL
            + reply_text[:EXCERPT_CHARS]
        ),
    ]


def is_title_request(messages: list[BaseMessage]) -> bool:
    """Whether `messages` are a `title_request`."""
    return (
        bool(messages) and messages[0].type == "system" and (messages[0].text == TITLE_INSTRUCTIONS)
    )


def user_text_of(messages: list[BaseMessage]) -> str:
    """The user's excerpt in a title request (what the demo model titles)."""
    text = messages[-1].text
    return text.removeprefix(USER_LABEL).split(REPLY_LABEL, 1)[0]


def clean_title(answer: str, *, max_chars: int) -> str:
    """The model's answer as a title: its first non-blank line, whitespace collapsed,
    without a "Title:" prefix, surrounding quotes or markdown, or a final full stop,
    colon or comma; at most `max_chars` (cut at a word when one fits). "" when nothing
    is left."""
    line = next((line for line in answer.splitlines() if line.strip()), "")
    line = " ".join(line.split())
    line = _PREFIX.sub("", line)
    previous = None
    while line != previous:
        previous = line
        line = line.strip().strip(_QUOTES).strip()
        line = line.rstrip(".。:;,").strip()
        line = _PREFIX.sub("", line)
    if len(line) > max_chars:
        cut = line[:max_chars]
        space = cut.rfind(" ")
        line = (cut[:space] if space > max_chars // 2 else cut).rstrip()
    return line
