"""What a turn runs with (prompts, model, tools), its overridable hooks, and the
process-wide turn limits."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from conversations import selectors
from conversations.codec import CodecError, decode_message
from conversations.llm.mcp import McpServer, parse_servers
from conversations.llm.providers import ModelSpec, conversation_model_name
from conversations.llm.registry import ModelInfo
from conversations.models import Agent, Conversation, ConversationMessage, MessageRole
from conversations.projects.models import Project
from conversations.turns.threads import in_turn_thread

logger = logging.getLogger(__name__)

# Retry-After of a turn refused at capacity: turns last seconds, so a few seconds later
# slots have freed up (or the retry lands on another worker).
CAPACITY_RETRY_AFTER_SECONDS = 5


def max_turns_per_user() -> int:
    """CONFAB_MAX_TURNS_PER_USER: turns one user may start or run at once in one process;
    0 (the default) means a quarter of CONFAB_MAX_TURNS_PER_PROCESS, at least 1."""
    configured = int(getattr(settings, "CONFAB_MAX_TURNS_PER_USER", 0) or 0)
    return configured if configured > 0 else max(1, max_turns_per_process() // 4)


def max_turns_per_process() -> int:
    """CONFAB_MAX_TURNS_PER_PROCESS (default 500): turns one process starts or runs at once.

    Read per turn, so a changed setting (a test's) applies at once.
    """
    return int(settings.CONFAB_MAX_TURNS_PER_PROCESS)


@dataclass
class TurnConfig:
    """The prompts, model and tools of one turn; defaults come from the agent."""

    model: str
    temperature: float
    system_prompt_template: str
    first_user_message_template: str
    context: dict[str, Any]
    tools: list[str] = field(default_factory=list)
    # The registry's entry for `model`, looked up when the turn starts (`start_turn`).
    model_info: ModelInfo | None = None
    mcp_servers: list[McpServer] = field(default_factory=list)
    # The conversation's project's instructions, added after the rendered system prompt
    # (plain text: not a template).
    project_instructions: str = ""
    # Tools whose calls wait for the user's approval (the agent's
    # `tools_requiring_approval`; "*": every tool).
    approval_tools: list[str] = field(default_factory=list)

    def needs_approval(self, tool_name: str) -> bool:
        return "*" in self.approval_tools or tool_name in self.approval_tools

    @property
    def model_spec(self) -> ModelSpec:
        info = self.model_info
        return ModelSpec(
            model=self.model,
            temperature=self.temperature,
            provider=info.provider if info else "",
            max_output_tokens=info.max_output_tokens if info else None,
        )


async def load_agent(conversation: Conversation) -> Agent:
    """Fetch the conversation's agent, and its project if it is in one, unless the caller
    did (async code cannot lazy-load them). The project is read again for each turn:
    changed instructions apply from the next turn."""
    if not Conversation.agent.is_cached(conversation):
        conversation.agent = await Agent.objects.aget(pk=conversation.agent_id)
    # One query, and not from `conversation.project_id`: a socket's conversation row may
    # be older than a move to another project.
    project = await Project.objects.filter(conversations__pk=conversation.pk).afirst()
    conversation.project = project
    return conversation.agent


def build_turn_config(
    conversation: Conversation,
    *,
    model: str | None = None,
    temperature: float | None = None,
    system_prompt_template: str | None = None,
    first_user_message_template: str | None = None,
    context: dict[str, Any] | None = None,
) -> TurnConfig:
    """The agent's settings for `conversation`, with the conversation's chosen model and
    temperature over them, and any given override over both."""
    agent = conversation.agent
    if temperature is None:
        temperature = conversation.temperature
    return TurnConfig(
        model=model or conversation_model_name(conversation),
        temperature=agent.temperature if temperature is None else temperature,
        system_prompt_template=(
            agent.system_prompt_template
            if system_prompt_template is None
            else system_prompt_template
        ),
        first_user_message_template=(
            agent.first_user_message_template
            if first_user_message_template is None
            else first_user_message_template
        ),
        context=conversation.context if context is None else context,
        tools=list(agent.tools or []),
        mcp_servers=agent_mcp_servers(agent),
        project_instructions=project_instructions(conversation),
        approval_tools=[
            name for name in (agent.tools_requiring_approval or []) if isinstance(name, str)
        ],
    )


def agent_mcp_servers(agent: Agent) -> list[McpServer]:
    """The agent's MCP servers; none (logged) when its stored list is not valid: the
    admin validates it, a bad row written around it must not fail every turn."""
    try:
        return parse_servers(agent.mcp_servers)
    except ValidationError as error:
        logger.error("Agent %s: mcp_servers ignored: %s", agent.slug, error.messages)
        return []


def project_instructions(conversation: Conversation) -> str:
    """The instructions of the conversation's project when it was loaded (`load_agent`)."""
    if not conversation.project_id or not Conversation.project.is_cached(conversation):
        return ""
    project = conversation.project
    return project.instructions if project is not None else ""


def window_to_messages(rows: list[ConversationMessage]) -> list[BaseMessage]:
    """Decode a window (oldest first) into messages a provider accepts.

    The window may cut a tool exchange in half; providers reject tool results
    without their call and calls without their results, so those are dropped
    (a call's text is kept). Calls whose arguments were not JSON
    (`invalid_tool_calls`) are sent as calls too, so they count as calls here.

    A row that does not decode (written by another tool, or damaged) is left out and
    logged: otherwise every later turn of the conversation would fail on it. The row
    itself stays as stored.
    """
    while rows and rows[0].role != MessageRole.HUMAN:
        rows = rows[1:]
    messages = []
    for row in rows:
        try:
            messages.append(decode_message(row.content))
        except CodecError as exc:
            logger.warning("Message %s left out of the model's context: %s", row.pk, exc)
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    called: set[str] = set()
    cleaned: list[BaseMessage] = []
    for message in messages:
        if isinstance(message, AIMessage):
            calls = [*message.tool_calls, *message.invalid_tool_calls]
            if calls and all(call["id"] in answered for call in calls):
                called.update(call["id"] for call in calls)
            else:
                if calls:
                    message = AIMessage(content=message.content)
                if not message.text:
                    continue
        if isinstance(message, ToolMessage) and message.tool_call_id not in called:
            continue
        cleaned.append(message)
    return cleaned


def human_message_last(rows: list[Any]) -> list[Any]:
    """The window with its newest human message moved to the end.

    A queued message's turn begins after the turns of the messages queued before it,
    whose replies are stored later (higher ids) than the message itself: the model must
    see those replies, then the message it answers. Otherwise a no-op."""
    for index in range(len(rows) - 1, -1, -1):
        if rows[index].role == MessageRole.HUMAN:
            if index != len(rows) - 1:
                rows = [*rows[:index], *rows[index + 1 :], rows[index]]
            break
    return rows


class TurnHooks:
    """The engine's override points. The websocket consumer passes its own
    (the seed's `aget_previous_messages` and `on_conversation_complete`)."""

    async def aget_previous_messages(
        self, conversation: Conversation, up_to_id: int
    ) -> list[BaseMessage]:
        """The bounded history window sent to the model, ending with the human message.

        Read in the turn engine's thread pool (`threads`), not through the async ORM's
        single thread: every turn of a burst reads its window at start-up.
        """
        window = selectors.history_window(
            conversation_id=conversation.pk,
            up_to_id=up_to_id,
            size=settings.CONFAB_HISTORY_WINDOW,
        )
        rows = await in_turn_thread(list)(window)
        rows.reverse()
        return window_to_messages(human_message_last(rows))

    async def on_conversation_complete(
        self,
        human_message: ConversationMessage,
        ai_message: ConversationMessage,
        tools_output_list: list[dict[str, Any]],
    ) -> None:
        """Called once a turn completed and is stored. Default: nothing."""
