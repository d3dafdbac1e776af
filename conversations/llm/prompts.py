"""Prompt templates: `str.format` placeholders whose names are any Unicode word.

Only plain names are allowed (`{언어}`, `{level}`): attribute and index access
(`{x.__class__}`, `{x[0]}`) would let a template reach into Python objects, so
they are rejected when a template is parsed.
"""

from __future__ import annotations

import re
from string import Formatter
from typing import Any

NAME_RE = re.compile(r"^\w+$")


class TemplateError(ValueError):
    """A template uses something other than plain `{name}` placeholders."""


def template_variables(template: str) -> list[str]:
    """Names of the placeholders in a template, in order of first use."""
    names: list[str] = []
    try:
        parsed = list(Formatter().parse(template or ""))
    except ValueError as exc:
        raise TemplateError(str(exc)) from exc
    for _literal, field_name, spec, conversion in parsed:
        if field_name is None:
            continue
        if not NAME_RE.match(field_name) or field_name.isdigit():
            raise TemplateError(f"Placeholder {{{field_name}}} is not a plain name.")
        if spec or conversion:
            # `{x:>{y}}` would name a variable nobody validated, and `{x:>999999999}`
            # would render a gigabyte: placeholders are names, nothing more.
            raise TemplateError(f"Placeholder {{{field_name}}} has a conversion or format spec.")
        if field_name not in names:
            names.append(field_name)
    return names


def render_template(template: str, context: dict[str, Any]) -> str:
    """Render a template with plain-name placeholders from `context`."""
    template_variables(template)
    return template.format_map({key: str(value) for key, value in context.items()})
