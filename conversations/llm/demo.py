"""The offline demo model: a LangChain chat model that needs no network.

It streams a deterministic, clearly labelled reply word by word, with usage
metadata, so the whole flow (storage, events, websockets, GraphQL, SSE) can be
tried on a fresh machine without an API key.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from conversations.llm.titling import is_title_request, user_text_of

DEMO_MODEL_NAME = "confab-demo-offline"


class DemoChatModel(BaseChatModel):
    """Replies `[offline demo model] …` echoing the last human message; asked for a
    conversation's title (conversations/llm/titling.py), the user's first words."""

    model_name: str = DEMO_MODEL_NAME
    word_delay: float = 0.02

    @property
    def _llm_type(self) -> str:
        return "confab-demo"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> DemoChatModel:
        # The demo model never calls tools; binding them is accepted and ignored.
        return self

    def reply_for(self, messages: list[BaseMessage]) -> str:
        if is_title_request(messages):
            return demo_title(user_text_of(messages))
        last_human = next((m.text for m in reversed(messages) if m.type == "human"), "")
        return (
            "[offline demo model] This is Confab's demo reply; set OPENAI_API_KEY or "
            f"OPENAI_BASE_URL for a real model. You said: {last_human}"
        )

    def _usage(self, messages: list[BaseMessage], reply: str) -> dict[str, int]:
        input_tokens = sum(len(m.text.split()) for m in messages)
        output_tokens = len(reply.split())
        return {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        }

    def _pieces(self, reply: str) -> list[str]:
        words = reply.split(" ")
        return [word + (" " if i < len(words) - 1 else "") for i, word in enumerate(words)]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self.reply_for(messages)
        message = AIMessage(
            content=reply,
            usage_metadata=self._usage(messages, reply),
            response_metadata={"model_name": self.model_name},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = self.reply_for(messages)
        for piece in self._pieces(reply):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        yield self._final_chunk(messages, reply)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        reply = self.reply_for(messages)
        for piece in self._pieces(reply):
            await asyncio.sleep(self.word_delay)
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        yield self._final_chunk(messages, reply)

    def _final_chunk(self, messages: list[BaseMessage], reply: str) -> ChatGenerationChunk:
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=self._usage(messages, reply),
                response_metadata={"model_name": self.model_name, "finish_reason": "stop"},
            )
        )


DEMO_TITLE_WORDS = 6


def demo_title(user_text: str) -> str:
    """The demo model's title: the user's first words, capitalized ("Demo chat" when the
    message had no text, e.g. only an image)."""
    words = user_text.split()[:DEMO_TITLE_WORDS]
    if not words:
        return "Demo chat"
    title = " ".join(words)
    return title[0].upper() + title[1:]
