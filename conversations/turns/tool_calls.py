"""Run one tool call of a reply: any failure becomes a stored error result."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.conf import settings
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool

from conversations.codec import normalize_tool_output, tool_output_text
from conversations.files import save_output_file
from conversations.turns.threads import in_turn_thread

logger = logging.getLogger(__name__)


async def run_tool(tool: BaseTool | None, call: dict[str, Any]) -> ToolMessage:
    """Run one tool call; any failure becomes a stored error result, never a crashed turn."""
    name = call["name"] or ""
    try:
        if call.get("type") == "invalid_tool_call":
            raise ValueError("The tool call's arguments are not valid JSON.")
        if tool is None:
            raise LookupError(f"Unknown tool {name!r}.")
        raw = await asyncio.wait_for(tool.ainvoke(call["args"]), settings.CONFAB_TOOL_TIMEOUT)
        output = await in_turn_thread(normalize_tool_output)(raw, save_output_file)
        status = "success"
    except Exception as exc:  # noqa: BLE001 - a tool's failure is data for the model
        logger.info("Tool %s failed: %r", name, exc)
        # Our tools raise ValueError/LookupError with messages meant for the
        # model; anything else is summarised by its type only.
        detail = str(exc) if isinstance(exc, ValueError | LookupError) else type(exc).__name__
        if isinstance(exc, TimeoutError):
            detail = "The tool timed out."
        output = {"kind": "json", "value": {"error": "tool_failed", "message": detail}}
        status = "error"
    return ToolMessage(
        content=tool_output_text(output),
        tool_call_id=call["id"] or "",
        name=name,
        artifact=output,
        status=status,
    )


def denied_result(call: dict[str, Any], text: str, reason: str = "") -> ToolMessage:
    """The result the model gets for a call the user denied (or that timed out waiting
    for approval): the tool did not run; the user's reason, if any, is passed on."""
    if reason:
        text = f"{text} The user said: {reason}"
    return ToolMessage(
        content=text,
        tool_call_id=call["id"] or "",
        name=call["name"] or "",
        artifact={"kind": "json", "value": {"error": "tool_denied", "message": text}},
        status="error",
    )
