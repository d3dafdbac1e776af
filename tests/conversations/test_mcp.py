"""Tools from MCP servers: a real FastMCP server (streamable HTTP) in a subprocess, the
real langchain-mcp-adapters client, turns through the fake OpenAI server."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError

from conversations.codec import decode_message
from conversations.llm.mcp import forget_cached_tools, parse_servers
from conversations.models import Agent, ConversationMessage, MessageStatus
from conversations.services import create_conversation
from conversations.turns import start_turn, wait_for_result
from tests.support.fakeopenai import ToolCall
from tests.support.mcp_server import running_mcp_server
from tests.support.servers import free_port
from tests.support.turns import turn_cleanup  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_tool_lists():
    forget_cached_tools()
    yield
    forget_cached_tools()


@pytest.fixture
def mcp_url():
    with running_mcp_server(free_port()) as url:
        yield url


def agent_with(servers: list[dict], tools: list[str] | None = None) -> Agent:
    return Agent.objects.create(
        slug="mcp-agent",
        name="MCP",
        system_prompt_template="You translate.",
        model="test-model",
        tools=tools or [],
        mcp_servers=servers,
    )


async def turn(user, servers, content="Translate 사과", tools=None):
    agent = await sync_to_async(agent_with)(servers, tools)
    conversation = await sync_to_async(create_conversation)(user=user, agent=agent)
    result = await wait_for_result(
        await start_turn(conversation=conversation, content=content), timeout=20
    )
    rows = await sync_to_async(list)(
        ConversationMessage.objects.filter(conversation=conversation).order_by("id")
    )
    return result, rows


def offered(request) -> list[str]:
    return [tool["function"]["name"] for tool in request.body.get("tools", [])]


async def test_a_turn_calls_an_mcp_tool_and_stores_its_result(llm, user, mcp_url):
    llm.reply_tool_calls([ToolCall("lookup_word", {"word": "사과"}, id="call_1")])
    llm.reply_text(["사과 is apple."])
    result, rows = await turn(user, [{"name": "dictionary", "url": mcp_url}], tools=["calculator"])

    assert result.ai_message.status == MessageStatus.COMPLETE
    assert [r.role for r in rows] == ["human", "ai", "tool", "ai"]
    output = decode_message(rows[2].content)
    assert output.status == "success" and output.content == "사과: apple"
    assert output.tool_call_id == "call_1"
    # Built-in tools first, then the server's, with their JSON schemas.
    first = llm.requests[0]
    assert offered(first) == ["calculator", "lookup_word", "add", "echo_header"]
    schema = next(t for t in first.body["tools"] if t["function"]["name"] == "add")
    assert set(schema["function"]["parameters"]["properties"]) == {"a", "b"}
    assert llm.requests[1].messages[-1]["content"] == "사과: apple"


async def test_only_allowed_tools_are_offered(llm, user, mcp_url):
    llm.reply_text(["ok"])
    servers = [{"name": "dictionary", "url": mcp_url, "tools": ["lookup_word"]}]
    await turn(user, servers)
    assert offered(llm.requests[0]) == ["lookup_word"]


async def test_header_values_come_from_the_environment(llm, user, mcp_url, monkeypatch):
    monkeypatch.setenv("DICTIONARY_KEY", "secret-from-env")
    llm.reply_tool_calls([ToolCall("echo_header", {"name": "x-api-key"})])
    llm.reply_text(["done"])
    servers = [{"name": "d", "url": mcp_url, "headers": {"X-Api-Key": "DICTIONARY_KEY"}}]
    _, rows = await turn(user, servers)
    assert decode_message(rows[2].content).content == "secret-from-env"
    # The secret is in no stored row but the tool's own answer.
    agent = await Agent.objects.aget(slug="mcp-agent")
    assert "secret-from-env" not in str(agent.mcp_servers)


async def test_the_servers_error_is_the_tools_failure_result(llm, user, mcp_url):
    llm.reply_tool_calls([ToolCall("lookup_word", {"word": "banana"})])
    llm.reply_text(["I do not know that word."])
    result, rows = await turn(user, [{"name": "dictionary", "url": mcp_url}])
    assert result.ai_message.status == MessageStatus.COMPLETE
    error = decode_message(rows[2].content)
    assert error.status == "error"
    assert "'banana' is not in the dictionary." in error.artifact["value"]["message"]


async def test_a_server_that_is_down_gives_no_tools_and_the_turn_carries_on(llm, user):
    llm.reply_text(["Answered without tools."])
    down = f"http://127.0.0.1:{free_port()}/mcp"
    result, _ = await turn(user, [{"name": "down", "url": down}], tools=["calculator"])
    assert result.ai_message.status == MessageStatus.COMPLETE
    assert offered(llm.requests[0]) == ["calculator"]


async def test_tool_lists_are_kept_for_their_lifetime(llm, user, settings):
    port = free_port()
    servers = [{"name": "dictionary", "url": f"http://127.0.0.1:{port}/mcp"}]
    agent = await sync_to_async(agent_with)(servers)
    conversation = await sync_to_async(create_conversation)(user=user, agent=agent)

    async def one_turn(content: str):
        return await wait_for_result(
            await start_turn(conversation=conversation, content=content), timeout=20
        )

    with running_mcp_server(port):
        llm.reply_text(["listed"])
        await one_turn("first")
    # The server is gone; the list is still fresh: offered, and a call fails as a result.
    llm.reply_tool_calls([ToolCall("add", {"a": 1, "b": 2})])
    llm.reply_text(["the tool failed"])
    result = await one_turn("second")
    assert "add" in offered(llm.requests[1])
    assert result.ai_message.status == MessageStatus.COMPLETE
    rows = await sync_to_async(list)(
        ConversationMessage.objects.filter(conversation=conversation, role="tool")
    )
    assert decode_message(rows[-1].content).status == "error"
    # Once the list expires, the server is asked again and, being down, offers nothing.
    settings.CONFAB_MCP_TOOLS_TTL = 0
    forget_cached_tools()
    llm.reply_text(["no tools now"])
    await one_turn("third")
    assert offered(llm.requests[-1]) == []


@pytest.mark.parametrize(
    "value",
    [
        {"name": "x"},
        [{"name": "x"}],
        [{"name": "x", "url": "ftp://host/mcp"}],
        [{"name": "x", "url": "http://h/mcp", "headers": {"A": 1}}],
        [{"name": "x", "url": "http://h/mcp", "tools": "all"}],
        [{"name": "x", "url": "http://h/mcp", "token": "inline secret"}],
    ],
)
def test_bad_server_lists_are_refused_by_the_admin_form(value):
    with pytest.raises(ValidationError):
        parse_servers(value)
    agent = Agent(slug="a", name="A", system_prompt_template="x", mcp_servers=value)
    with pytest.raises(ValidationError) as refused:
        agent.full_clean()
    assert "mcp_servers" in refused.value.message_dict
