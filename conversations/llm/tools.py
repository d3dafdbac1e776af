"""The tool registry and Confab's built-in tools.

An agent lists the names of the tools it may call (`Agent.tools`). Tools are
plain LangChain tools; none runs model-written code: the calculator parses
arithmetic with `ast` and evaluates only numbers and operators.
"""

from __future__ import annotations

import ast
import operator
import re
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


# The largest integer result, in bits, any step of a calculation may produce (about
# 1,200 decimal digits). Exponents up to 100 alone do not bound the work: nested powers
# such as `(((9**99)**99)**99)**16` each pass that check while the result grows to tens
# of millions of bits, and computing it holds the GIL for tens of seconds (the tool
# timeout cannot interrupt it). So every step's result size is estimated from its
# operands' sizes before it is computed, and refused past this bound.
MAX_RESULT_BITS = 4096
MAX_EXPONENT = 100


class CalculationTooLarge(ValueError):
    """The result (or a step of it) would be too large to compute safely."""


def _bits(value: float) -> int:
    return abs(int(value)).bit_length() if isinstance(value, int) else 64


def _check_size(op: ast.operator, left: float, right: float) -> None:
    """Refuse, before computing it, a step whose integer result could exceed
    MAX_RESULT_BITS. Float steps are bounded by the float format (they overflow, fast)."""
    if not (isinstance(left, int) and isinstance(right, int)):
        return
    if isinstance(op, ast.Pow):
        if abs(right) > MAX_EXPONENT:
            raise CalculationTooLarge("Exponent too large.")
        if right > 0 and abs(left) > 1 and _bits(left) * right > MAX_RESULT_BITS:
            raise CalculationTooLarge("Result too large.")
    elif isinstance(op, ast.Mult) and _bits(left) + _bits(right) > MAX_RESULT_BITS:
        raise CalculationTooLarge("Result too large.")


def _evaluate(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if _bits(node.value) > MAX_RESULT_BITS:
            raise CalculationTooLarge("Number too large.")
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        _check_size(node.op, left, right)
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
    try:
        result = _evaluate(ast.parse(expression, mode="eval"))
    except OverflowError:
        raise CalculationTooLarge("Result too large.") from None
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


# Characters XML 1.0 does not allow in a document (C0 controls other than tab and line
# breaks, lone surrogates, U+FFFE/U+FFFF): a label holding one would make the SVG unparsable.
_NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _svg_text(value: str, limit: int) -> str:
    """Model-written text as SVG character data: cut to `limit` characters first, then
    escaped (escaping first and cutting after left broken entities such as `&lt`)."""
    return escape(_NOT_XML.sub("", str(value))[:limit])


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
            f'text-anchor="middle">{_svg_text(label, 12)}</text>'
        )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f'<text x="20" y="20" font-size="14">{_svg_text(title, 80)}</text>{"".join(bars)}</svg>'
    )
    # The bytes, not a stored file: the engine stores them as the turn's user's file in
    # its own thread pool (a tool runs in LangChain's executor, whose threads must not
    # hold database connections).
    return {"kind": "file_bytes", "name": "chart.svg", "mime_type": "image/svg+xml", "data": svg}
