"""The committed schema.graphql is the schema the code serves (CI also diffs `make schema`)."""

from pathlib import Path

from api.graphql.schema import schema

ROOT = Path(__file__).resolve().parents[3]


def test_schema_graphql_is_up_to_date():
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == schema.as_str(), "schema.graphql is stale: run `make schema`"


def test_no_prompt_or_owner_fields_are_exposed():
    sdl = schema.as_str()
    for secret in ("systemPrompt", "firstUserMessage", "cancelRequested", "user:"):
        assert secret not in sdl
    # A conversation shows the temperature its user chose; the agent's stays private.
    agent_type = sdl.split("type Agent {", 1)[1].split("}", 1)[0]
    assert "temperature" not in agent_type
