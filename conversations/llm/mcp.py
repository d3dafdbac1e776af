"""Tools from MCP servers (the streamable HTTP transport), configured per agent.

An agent's `mcp_servers` lists the servers its turns may use:

    [{"name": "dictionary", "url": "https://mcp.example/mcp",
      "headers": {"Authorization": "DICTIONARY_MCP_AUTH"},
      "tools": ["lookup_word"]}]

`headers` maps a header to the environment variable holding its value, so no secret is
stored in the database; `tools` (optional) is the allowlist of the server's tools.

A turn asks each server for its tools through `langchain-mcp-adapters` and keeps the
list for CONFAB_MCP_TOOLS_TTL seconds per process, so a turn does not pay a round trip
per server. A server that is down or slow while listing gives no tools (logged, and
remembered for CONFAB_MCP_FAILURE_TTL so turns do not queue on it) and the turn
carries on with the rest; a call that fails becomes the tool's failure result like any
tool's (`turns.tool_calls.run_tool`, bounded by CONFAB_TOOL_TIMEOUT). Each call opens
its own MCP session: nothing is held open between turns.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langchain_mcp_adapters.tools import load_mcp_tools

logger = logging.getLogger(__name__)

SERVER_KEYS = {"name", "url", "headers", "tools"}


@dataclass(frozen=True)
class McpServer:
    """One server an agent's turns may use."""

    name: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()  # (header, environment variable)
    tools: tuple[str, ...] | None = None  # None: every tool the server lists

    def resolved_headers(self) -> dict[str, str]:
        """Header values read from the environment now; an unset variable sends no header."""
        values = {}
        for header, variable in self.headers:
            value = os.environ.get(variable)
            if value is None:
                logger.warning(
                    "MCP server %s: %s is not set; %s not sent", self.name, variable, header
                )
            else:
                values[header] = value
        return values


def parse_servers(value: Any) -> list[McpServer]:
    """An agent's `mcp_servers` JSON as servers; ValidationError naming what is wrong."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise ValidationError("A list of servers is expected.")
    servers = []
    for index, item in enumerate(value):
        where = f"Server {index + 1}"
        if not isinstance(item, dict) or not {"name", "url"} <= set(item):
            raise ValidationError(f'{where}: an object with "name" and "url" is expected.')
        if unknown := set(item) - SERVER_KEYS:
            raise ValidationError(f"{where}: unknown keys {sorted(unknown)}.")
        name, url = item["name"], item["url"]
        if not isinstance(name, str) or not name or not isinstance(url, str):
            raise ValidationError(f"{where}: name and url must be text.")
        if not url.startswith(("http://", "https://")):
            raise ValidationError(f"{where}: the url must be http(s).")
        headers = item.get("headers") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in headers.items()
        ):
            raise ValidationError(f"{where}: headers map a header to an environment variable.")
        tools = item.get("tools")
        if tools is not None and not (
            isinstance(tools, list) and all(isinstance(t, str) for t in tools)
        ):
            raise ValidationError(f"{where}: tools must be a list of tool names.")
        servers.append(
            McpServer(
                name=name,
                url=url,
                headers=tuple(sorted(headers.items())),
                tools=None if tools is None else tuple(tools),
            )
        )
    return servers


# Tool lists by server, with when they expire: (expires_at, tools).
_CACHE: dict[McpServer, tuple[float, list[BaseTool]]] = {}


async def mcp_tools(servers: list[McpServer], *, taken: set[str]) -> list[BaseTool]:
    """The tools of `servers`, in order, leaving out names already `taken` (built-in
    tools, or an earlier server's) so the model never sees two tools of one name."""
    listed = await asyncio.gather(*(_server_tools(server) for server in servers))
    tools: list[BaseTool] = []
    names = set(taken)
    for server, server_tools in zip(servers, listed, strict=True):
        for candidate in server_tools:
            if candidate.name in names:
                logger.warning(
                    "MCP server %s: tool %s shadows another; left out", server.name, candidate.name
                )
                continue
            names.add(candidate.name)
            tools.append(candidate)
    return tools


async def _server_tools(server: McpServer) -> list[BaseTool]:
    now = time.monotonic()
    cached = _CACHE.get(server)
    if cached is not None and cached[0] > now:
        return cached[1]
    try:
        listed = await asyncio.wait_for(
            load_mcp_tools(None, connection=_connection(server), handle_tool_errors=False),
            settings.CONFAB_MCP_LIST_TIMEOUT,
        )
    except Exception as exc:  # noqa: BLE001 - a server that is down must not fail the turn
        logger.warning("MCP server %s could not list its tools: %r", server.name, exc)
        _CACHE[server] = (now + settings.CONFAB_MCP_FAILURE_TTL, [])
        return []
    allowed = set(server.tools) if server.tools is not None else None
    tools = [_as_confab_tool(t) for t in listed if allowed is None or t.name in allowed]
    _CACHE[server] = (now + settings.CONFAB_MCP_TOOLS_TTL, tools)
    return tools


def _connection(server: McpServer) -> dict[str, Any]:
    return {
        "transport": "streamable_http",
        "url": server.url,
        "headers": server.resolved_headers(),
        "timeout": settings.CONFAB_TOOL_TIMEOUT,
    }


def _as_confab_tool(mcp_tool: BaseTool) -> BaseTool:
    """The MCP tool with results as Confab's tools give them: text (the server's text
    blocks joined), or the blocks as JSON when there is more than text; the server's own
    error text as a failure the model reads (a ValueError: `run_tool` passes it on)."""

    async def call(**arguments: Any) -> Any:
        try:
            blocks = await mcp_tool.ainvoke(arguments)
        except ToolException as exc:
            raise ValueError(str(exc)) from exc
        if isinstance(blocks, str):
            return blocks
        if all(isinstance(b, dict) and b.get("type") == "text" for b in blocks):
            return "\n".join(b["text"] for b in blocks)
        return {"kind": "json", "value": blocks}

    return StructuredTool(
        name=mcp_tool.name,
        description=mcp_tool.description,
        args_schema=mcp_tool.args_schema,
        coroutine=call,
    )


def forget_cached_tools() -> None:
    """Drop every cached tool list (tests; an operator changing servers need not wait)."""
    _CACHE.clear()
