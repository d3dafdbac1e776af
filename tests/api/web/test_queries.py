"""The web app's GraphQL documents are valid against the served schema.

A renamed field in the API would otherwise only show up in the browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import parse, validate

from api.graphql.schema import schema

QUERIES = Path(__file__).resolve().parents[3] / "api" / "web" / "static" / "web" / "queries.js"


def documents() -> dict[str, str]:
    """The `export const NAME = `...`;` documents of queries.js, fragments substituted."""
    source = QUERIES.read_text(encoding="utf-8")
    raw = dict(re.findall(r"export const (\w+) = `(.*?)`;", source, flags=re.S))
    return {
        name: re.sub(r"\$\{(\w+)\}", lambda match: raw[match.group(1)], text)
        for name, text in raw.items()
        if not name.endswith("_FIELDS")
    }


def test_the_app_has_documents() -> None:
    assert {"SEND_MESSAGE", "CONVERSATION_EVENTS", "CONVERSATIONS_CHANGED", "MESSAGES"} <= set(
        documents()
    )


@pytest.mark.parametrize("name", sorted(documents()))
def test_document_is_valid_against_the_schema(name: str) -> None:
    errors = validate(schema._schema, parse(documents()[name]))
    assert errors == [], [error.message for error in errors]
