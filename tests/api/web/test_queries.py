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
    """The `export const NAME = `...`;` documents of queries.js, fragments (and the
    pieces they are built of) substituted."""
    source = QUERIES.read_text(encoding="utf-8")
    constants = re.findall(r"(?:export )?const (\w+) = `(.*?)`;", source, flags=re.S)
    raw = dict(constants)
    exported = set(re.findall(r"export const (\w+) = `", source))

    def expand(text: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda match: expand(raw[match.group(1)]), text)

    return {
        name: expand(text)
        for name, text in raw.items()
        if name in exported and not name.endswith(("_FIELDS", "_SELECTION"))
    }


def test_the_app_has_documents() -> None:
    assert {"SEND_MESSAGE", "CONVERSATION_EVENTS", "CONVERSATIONS_CHANGED", "MESSAGES"} <= set(
        documents()
    )


@pytest.mark.parametrize("name", sorted(documents()))
def test_document_is_valid_against_the_schema(name: str) -> None:
    errors = validate(schema._schema, parse(documents()[name]))
    assert errors == [], [error.message for error in errors]
