"""Fit a turn's input to its model (the registry's `ModelInfo`): images and context window.

- A new message with an image for a model that takes none is refused
  (`require_images_supported`, MODEL_CANNOT_SEE_IMAGES) before anything is stored.
- Images earlier in the history are replaced by a short text for such a model
  (a conversation may switch models: its old images must not break every later turn).
- The history is cut, oldest first, to what fits in the model's context window after
  its reply (`max_output_tokens`), counted approximately (langchain-core's
  `count_tokens_approximately`: characters / 4, a fixed cost per image), so a model
  with a small window gets fewer messages than CONFAB_HISTORY_WINDOW.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately

from conversations.llm.registry import ModelInfo
from core.errors import ModelCannotSeeImages

IMAGE_BLOCK_TYPES = frozenset({"image", "image_url", "input_image"})
IMAGE_PLACEHOLDER = "[image: not shown to this model]"
# Room kept for the tool schemas and the provider's own framing.
RESERVED_TOKENS = 1_000
# A reply bound for models whose registry row names none (unknown models).
DEFAULT_OUTPUT_TOKENS = 4_096


def is_image_block(block: Any) -> bool:
    if not isinstance(block, dict):
        return False
    if block.get("type") in IMAGE_BLOCK_TYPES:
        return True
    # LangChain's standard file block with an image type.
    return block.get("type") == "file" and str(block.get("mime_type", "")).startswith("image/")


def has_image(content: Any) -> bool:
    """Whether message content (a string or a list of content blocks) holds an image."""
    return isinstance(content, list) and any(is_image_block(block) for block in content)


def require_images_supported(info: ModelInfo, content: Any) -> None:
    """Raise ModelCannotSeeImages when `content` has an image and the model takes none."""
    if not info.supports_images and has_image(content):
        raise ModelCannotSeeImages(
            f"The model {info.name!r} cannot see images. Choose a model that can "
            "(GET /api/v1/models/: supports_images)."
        )


def _without_images(message: BaseMessage) -> BaseMessage:
    if not has_image(message.content):
        return message
    content = [
        {"type": "text", "text": IMAGE_PLACEHOLDER} if is_image_block(block) else block
        for block in message.content
    ]
    return message.model_copy(update={"content": content})


def fit_history(
    history: list[BaseMessage], *, system_tokens: int, info: ModelInfo
) -> list[BaseMessage]:
    """`history` (oldest first, ending with the turn's human message) made fit for the
    model: images replaced when it takes none, the oldest messages dropped while the
    whole does not fit in its context window. The newest human message is always kept;
    a cut never starts with a tool result or an AI reply."""
    if not info.supports_images:
        history = [_without_images(message) for message in history]
    budget = (
        info.context_window
        - (info.max_output_tokens or DEFAULT_OUTPUT_TOKENS)
        - RESERVED_TOKENS
        - system_tokens
    )
    costs = [count_tokens_approximately([message]) for message in history]
    total = sum(costs)
    start = 0
    while total > budget and start < len(history) - 1:
        total -= costs[start]
        start += 1
        # Never start in the middle of an exchange: skip to the next human message.
        while start < len(history) - 1 and not isinstance(history[start], HumanMessage):
            total -= costs[start]
            start += 1
    kept = history[start:]
    # A tool exchange cut in half is dropped (as conversations.turns.config does).
    while kept and isinstance(kept[0], AIMessage | ToolMessage):
        kept = kept[1:]
    return kept
