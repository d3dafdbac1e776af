"""One turn while it runs: model rounds, tool calls, and how the reply ends.

`engine.start_turn` admits and stores the turn, then runs `run_turn` in its own
task. Each round streams one reply (`streaming.stream_reply`); a reply with tool
calls is stored, its calls run (`tool_calls.run_tool`) and stored, and the next
round answers them; the last round offers no tools, so a turn always ends in text.
A reply calling a tool that needs the user's approval is stored `awaiting_approval` and
the task ends (`_pause`); the decision resumes the turn in a new task from the stored
messages (`_resume`).
A cancel, a failure or shutdown ends the reply in the row being written, keeping
its partial text.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from django.conf import settings
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    SystemMessage,
    ToolMessage,
    message_chunk_to_message,
)
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.tools import BaseTool

from conversations import services
from conversations.approvals import services as approval_services
from conversations.approvals.models import Decision, ToolApproval
from conversations.approvals.selectors import denial_text, paused_turn_state
from conversations.codec import decode_message
from conversations.files import attachments as file_attachments
from conversations.files import output_owner
from conversations.llm.fit import fit_history
from conversations.llm.mcp import mcp_tools
from conversations.llm.prompts import render_template
from conversations.llm.providers import get_chat_model
from conversations.llm.tools import get_tools
from conversations.models import Conversation, ConversationMessage, MessageRole, MessageStatus

# The module, not its function: titles.generation imports turn modules itself, and
# importing it first would find this one half-loaded.
from conversations.titles import generation as titles
from conversations.turns.config import TurnConfig, TurnHooks
from conversations.turns.failures import classify_failure, error_body
from conversations.turns.streaming import CancelSignal, StreamState, TurnCancelled, stream_reply
from conversations.turns.threads import in_turn_thread
from conversations.turns.tool_calls import denied_result, run_tool
from conversations.usage.services import Charge
from core import tracing

logger = logging.getLogger(__name__)


async def run_turn(
    *,
    conversation: Conversation,
    human_message: ConversationMessage,
    ai_message: ConversationMessage,
    turn_id: uuid.UUID,
    config: TurnConfig,
    hooks: TurnHooks,
    cancel: CancelSignal,
    charge: Charge | None = None,
    resume: ConversationMessage | None = None,
) -> ConversationMessage | None:
    """Run the turn from its start, or (`resume`: the reply whose tool calls the user
    decided) from the stored messages of a turn that paused for approval."""
    # Files the turn's tools write belong to the conversation's user (this task runs in
    # its own context, which the tools' threads inherit).
    output_owner.set(conversation.user_id)
    runner = TurnRunner(
        conversation=conversation,
        turn_id=turn_id,
        config=config,
        cancel=cancel,
        ai_message=ai_message,
        charge=charge,
    )
    try:
        with tracing.turn(conversation_id=conversation.pk, turn_id=turn_id) as observed:
            final = await runner.run(hooks, human_message, resume)
            observed.ended(final)
        if final is not None and final.status == MessageStatus.COMPLETE:
            try:
                await hooks.on_conversation_complete(human_message, final, runner.tools_output)
            except Exception:
                logger.exception("on_conversation_complete failed for turn %s", turn_id)
            # After the reply is stored and announced, in a task of its own: a title
            # never delays or fails the turn (conversations/titles).
            try:
                titles.schedule_title(
                    conversation=conversation,
                    human_message=human_message,
                    reply=final,
                    config=config,
                    charge=charge,
                )
            except Exception:
                logger.exception("Scheduling the title failed for turn %s", turn_id)
        return final
    finally:
        # Normally the reply's last write released the lock; otherwise (lost, crashed)
        # release it now if the turn still holds it.
        if not runner.lock_settled:
            await in_turn_thread(services.end_turn)(
                conversation_id=conversation.pk, turn_id=turn_id
            )


class TurnRunner:
    """One turn's state while it runs: the current AI row and the tool outputs."""

    def __init__(
        self,
        *,
        conversation: Conversation,
        turn_id: uuid.UUID,
        config: TurnConfig,
        cancel: CancelSignal,
        ai_message: ConversationMessage,
        charge: Charge | None = None,
    ) -> None:
        self.conversation = conversation
        # Every model call's tokens are recorded with the reply that stores it.
        self.charge = charge
        self.turn_id = turn_id
        self.config = config
        self.cancel = cancel
        self.ai_row = ai_message
        self.state: StreamState | None = None
        self.tools_output: list[dict[str, Any]] = []
        # The turn's lock needs nothing more from `run_turn`: the reply's last write
        # released it (`finish_message`), or a pause handed it to the decisions.
        self.lock_settled = False

    async def run(
        self,
        hooks: TurnHooks,
        human_message: ConversationMessage,
        resume: ConversationMessage | None = None,
    ) -> ConversationMessage | None:
        try:
            if resume is not None:
                return await self._resume(hooks, human_message, resume)
            return await self._rounds(hooks, human_message)
        except services.TurnLost:
            logger.info("Turn %s lost its lock (cleared or recovered); stopping.", self.turn_id)
            return None
        except TurnCancelled:
            return await self._end(MessageStatus.CANCELLED)
        except asyncio.CancelledError:
            # The process is shutting down: record the reply as interrupted.
            await asyncio.shield(self._end_failed("interrupted", "The reply was interrupted."))
            raise
        except Exception as exc:
            code, message = classify_failure(exc)
            logger.warning("Turn %s failed (%s)", self.turn_id, code, exc_info=True)
            return await self._end_failed(code, message)

    async def _rounds(
        self, hooks: TurnHooks, human_message: ConversationMessage
    ) -> ConversationMessage:
        # Everything stored before this turn's reply: a queued message's turn also sees
        # the replies to the messages queued before it (stored after it, by id).
        up_to_id = max(human_message.id, self.ai_row.id - 1)
        messages, tools = await self._context(hooks, up_to_id)
        return await self._loop(messages, tools, first_round=0)

    async def _resume(
        self, hooks: TurnHooks, human_message: ConversationMessage, paused: ConversationMessage
    ) -> ConversationMessage:
        """Go on with a turn that paused for approval, from what is stored: the window the
        turn started with, then its own messages up to the paused reply (what `_loop` held
        in memory when it paused), then the decided calls' results, then the next rounds."""
        first_ai_id, own_rows, decisions = await in_turn_thread(paused_turn_state)(
            self.conversation.pk, self.turn_id, paused.id
        )
        up_to_id = max(human_message.id, first_ai_id - 1)
        messages, tools = await self._context(hooks, up_to_id)
        messages.extend(decode_message(row.content) for row in own_rows)
        reply = messages[-1]
        rounds_done = sum(1 for row in own_rows if row.role == MessageRole.AI)
        messages.extend(await self._run_tools(reply, tools, decisions))
        self.cancel.check(self.turn_id)
        await self._open_row()
        return await self._loop(messages, tools, first_round=rounds_done)

    async def _context(
        self, hooks: TurnHooks, up_to_id: int
    ) -> tuple[list[BaseMessage], list[BaseTool]]:
        """The messages the first round sends (system prompt, fitted history window) and
        the tools the turn offers."""
        history = await hooks.aget_previous_messages(self.conversation, up_to_id)
        system_prompt = render_template(self.config.system_prompt_template, self.config.context)
        if self.config.project_instructions:
            system_prompt += "\n\nProject instructions:\n" + self.config.project_instructions
        system = SystemMessage(content=system_prompt)
        info = self.config.model_info
        if info is not None:
            # Fitted while files are still references: counted as their bytes, a few
            # images would push every older message out of the window.
            history = fit_history(
                history, system_tokens=count_tokens_approximately([system]), info=info
            )
        # File blocks become what the model reads (image bytes, file text): one read
        # of each file, in the turn's thread pool, never on the event loop. Without
        # files, no thread hop before the provider request (time to first token).
        if file_attachments.has_file_blocks(history):
            history = await in_turn_thread(file_attachments.model_messages)(history)
        messages: list[BaseMessage] = [system, *history]
        tools = get_tools(self.config.tools)
        if info is not None and not info.supports_tools:
            tools = []
        elif self.config.mcp_servers:
            taken = {tool.name for tool in tools}
            tools += await mcp_tools(self.config.mcp_servers, taken=taken)
        return messages, tools

    async def _loop(
        self, messages: list[BaseMessage], tools: list[BaseTool], *, first_round: int
    ) -> ConversationMessage:
        max_rounds = settings.CONFAB_TOOL_MAX_ROUNDS
        for round_number in range(first_round, max_rounds + 1):
            # The last round offers no tools, so the loop always ends in text.
            offer_tools = bool(tools) and round_number < max_rounds
            model = get_chat_model(self.config.model_spec)
            if offer_tools:
                model = model.bind_tools(tools)
            self.state = StreamState(
                conversation_id=self.conversation.pk,
                turn_id=self.turn_id,
                message_id=self.ai_row.id,
            )
            chunk = await stream_reply(
                model=model, messages=messages, state=self.state, cancel=self.cancel
            )
            reply = message_chunk_to_message(chunk)
            if not offer_tools:
                # Calls the model made without being offered tools never run: not kept.
                reply = without_tool_calls(reply)
            if not (reply.tool_calls or reply.invalid_tool_calls):
                return await self._finish(reply, MessageStatus.COMPLETE, last=True)
            waiting = [c for c in reply.tool_calls if self.config.needs_approval(c["name"])]
            if waiting:
                # Nothing of this turn stays in memory from here: a decision, in any
                # process, resumes it from the stored reply (`_resume`).
                return await self._pause(reply, waiting)
            # That reply is stored for good: a cancel or failure from here on ends
            # the turn in a new row (`_end`, `_end_failed`), never in this one.
            await self._finish(reply, MessageStatus.COMPLETE, last=False)
            messages.append(reply)
            messages.extend(await self._run_tools(reply, tools))
            self.cancel.check(self.turn_id)
            await self._open_row()
        raise AssertionError("unreachable: the last round offers no tools")

    async def _open_row(self) -> None:
        """Store the streaming AI message the next round (or the turn's end) writes to."""
        self.state = None
        self.ai_row = await in_turn_thread(services.add_turn_message)(
            conversation_id=self.conversation.pk,
            turn_id=self.turn_id,
            message=AIMessage(content=""),
            status=MessageStatus.STREAMING,
        )

    async def _pause(self, reply: AIMessage, waiting: list[dict[str, Any]]) -> ConversationMessage:
        """Store the reply as `awaiting_approval` with its pending calls; the turn keeps the
        conversation's lock but no task: this one ends here."""
        self.ai_row = await in_turn_thread(approval_services.pause_for_approval)(
            conversation_id=self.conversation.pk,
            turn_id=self.turn_id,
            message_id=self.ai_row.id,
            message=reply,
            model=self._model_name(reply),
            calls=waiting,
            charge=self.charge,
        )
        self.lock_settled = True
        return self.ai_row

    async def _run_tools(
        self,
        reply: AIMessage,
        tools: list[BaseTool],
        decisions: dict[str, ToolApproval] | None = None,
    ) -> list[ToolMessage]:
        by_name = {tool.name: tool for tool in tools}
        decisions = decisions or {}
        results = []
        # Calls whose arguments are not JSON are answered too (with an error):
        # the provider refuses a history with an unanswered call.
        for call in [*reply.tool_calls, *reply.invalid_tool_calls]:
            decided = decisions.get(call["id"] or "")
            if decided is not None and decided.decision != Decision.APPROVED:
                result = denied_result(call, denial_text(decided), decided.reason)
            else:
                result = await run_tool(by_name.get(call["name"]), call)
            await in_turn_thread(services.add_turn_message)(
                conversation_id=self.conversation.pk, turn_id=self.turn_id, message=result
            )
            self.tools_output.append(
                {"name": call["name"], "args": call["args"], "output": result.artifact}
            )
            results.append(result)
        return results

    def _model_name(self, message: BaseMessage) -> str:
        return message.response_metadata.get("model_name") or self.config.model

    async def _finish(
        self, message: BaseMessage, status: str, *, last: bool
    ) -> ConversationMessage:
        self.ai_row = await in_turn_thread(services.finish_message)(
            conversation_id=self.conversation.pk,
            turn_id=self.turn_id,
            message_id=self.ai_row.id,
            message=message,
            status=status,
            model=self._model_name(message),
            release_lock=last,
            charge=self.charge,
        )
        self.lock_settled = last
        return self.ai_row

    def _partial(self) -> AIMessage:
        if self.state and self.state.accumulated is not None:
            return message_chunk_to_message(self.state.accumulated)
        return AIMessage(content=self.state.text if self.state else "")

    async def _flush_deltas(self) -> None:
        """Send the text batched since the last delta, so a cut reply's deltas still add
        up to its stored text."""
        if self.state is not None and self.state.message_id == self.ai_row.id:
            await self.state.flush()

    async def _end(self, status: str) -> ConversationMessage | None:
        try:
            await self._flush_deltas()
            if self.ai_row.status != MessageStatus.STREAMING:
                await self._open_row()
            # Tool calls of a reply that did not finish are not kept: no tool ran.
            partial = without_tool_calls(self._partial())
            return await self._finish(partial, status, last=True)
        except services.TurnLost:
            return None

    async def _end_failed(self, code: str, message: str) -> ConversationMessage | None:
        try:
            await self._flush_deltas()
            if self.ai_row.status != MessageStatus.STREAMING:
                await self._open_row()
            partial = self._partial()
            self.ai_row = await in_turn_thread(services.finish_message)(
                conversation_id=self.conversation.pk,
                turn_id=self.turn_id,
                message_id=self.ai_row.id,
                message=AIMessage(content=partial.content, id=partial.id),
                status=MessageStatus.FAILED,
                model=self.config.model,
                error=error_body(code, message),
                release_lock=True,
                charge=self.charge,
            )
            self.lock_settled = True
            return self.ai_row
        except services.TurnLost:
            return None


def without_tool_calls(message: AIMessage) -> AIMessage:
    """The reply's text and metadata without its tool calls."""
    if not (message.tool_calls or message.invalid_tool_calls):
        return message
    return AIMessage(
        content=message.content,
        response_metadata=message.response_metadata,
        usage_metadata=message.usage_metadata,
        id=message.id,
    )
