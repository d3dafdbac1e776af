"""The tool registry and Confab's built-in tools.

An agent lists the names of the tools it may call (`Agent.tools`). Tools are
plain LangChain tools; none runs model-written code: the calculator parses
arithmetic with `ast` and evaluates only numbers and operators.
"""

from __future__ import annotations

import ast
import operator
from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.tools import BaseTool, tool

REGISTRY: dict[str, BaseTool] = {}


def register_tool(candidate: BaseTool) -> BaseTool:
    """Make a tool available to agents under its name."""
    REGISTRY[candidate.name] = candidate
    return candidate


def get_tools(names: list[str]) -> list[BaseTool]:
    """The registered tools among `names` (unknown names are ignored)."""
    return [REGISTRY[name] for name in names if name in REGISTRY]


_OPERATORS: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 100:
            raise ValueError("Exponent too large.")
        return _OPERATORS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    raise ValueError("Only numbers and + - * / // % ** are allowed.")


@register_tool
@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as `(3 + 4) * 2.5`."""
    if len(expression) > 200:
        raise ValueError("Expression too long.")
    result = _evaluate(ast.parse(expression, mode="eval"))
    return str(result)


@register_tool
@tool
def current_time(timezone: str = "UTC") -> str:
    """The current date and time in an IANA time zone such as `Asia/Seoul`."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"Unknown time zone {timezone!r}.") from None
    return datetime.now(zone).isoformat(timespec="seconds")


@register_tool
@tool
def multiplication_table(number: int, up_to: int = 10) -> list[dict[str, int]]:
    """A multiplication table for `number` as records (a table output)."""
    if not 1 <= up_to <= 100:
        raise ValueError("up_to must be between 1 and 100.")
    return [{"factor": i, "number": number, "product": number * i} for i in range(1, up_to + 1)]


@register_tool
@tool
def bar_chart(title: str, labels: list[str], values: list[float]) -> dict[str, Any]:
    """Draw a bar chart as an SVG image and return a reference to the stored file."""
    if len(labels) != len(values) or not 1 <= len(values) <= 50:
        raise ValueError("labels and values must have the same length, 1 to 50 items.")
    width, bar, gap, height = 40 + 50 * len(values), 40, 10, 240
    top = max(max(values), 1e-9)
    bars = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = max(0.0, value) / top * (height - 60)
        x = 20 + i * (bar + gap)
        bars.append(
            f'<rect x="{x}" y="{height - 30 - h:.1f}" width="{bar}" height="{h:.1f}" '
            f'fill="#4f6bed"/><text x="{x + bar / 2}" y="{height - 12}" font-size="11" '
            f'text-anchor="middle">{escape(str(label))[:12]}</text>'
        )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f'<text x="20" y="20" font-size="14">{escape(title)[:80]}</text>{"".join(bars)}</svg>'
    )
    # The bytes, not a stored file: the engine stores them as the turn's user's file in
    # its own thread pool (a tool runs in LangChain's executor, whose threads must not
    # hold database connections).
    return {"kind": "file_bytes", "name": "chart.svg", "mime_type": "image/svg+xml", "data": svg}
