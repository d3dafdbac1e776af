"""The OpenAPI schema: valid without warnings, current, and fit for SDK generation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command

OPERATIONS = {
    "models_list",
    "auth_register",
    "auth_token_create",
    "auth_logout",
    "auth_logout_all",
    "auth_me",
    "auth_password_change",
    "auth_devices_list",
    "auth_devices_revoke",
    "auth_push_retrieve",
    "auth_push_set",
    "auth_push_remove",
    "sync",
    "agents_list",
    "agents_retrieve",
    "conversations_list",
    "conversations_create",
    "conversations_retrieve",
    "conversations_update",
    "conversations_destroy",
    "conversations_clear",
    "conversations_branch",
    "conversations_fork",
    "conversations_cancel",
    "conversations_events",
    "conversations_regenerate",
    "tool_calls_pending",
    "tool_calls_approve",
    "tool_calls_deny",
    "messages_list",
    "messages_send",
    "messages_edit",
    "messages_retrieve",
    "files_create",
    "files_list",
    "files_retrieve",
    "files_destroy",
    "files_content",
    "files_signed_content",
    "messages_feedback_set",
    "messages_feedback_clear",
    "projects_list",
    "projects_create",
    "projects_retrieve",
    "projects_update",
    "projects_destroy",
    "search",
    "shares_list",
    "shares_create",
    "shares_destroy",
    "shared_retrieve",
    "shared_file_content",
    "conversations_export",
    "conversations_import",
    "export_archive",
    "usage_report",
    "usage_quota",
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("openapi") / "openapi.yaml"
    # --fail-on-warn: any drf-spectacular warning fails the command.
    call_command("spectacular", "--file", str(path), "--validate", "--fail-on-warn")
    return path.read_text()


@pytest.fixture(scope="module")
def schema(generated) -> dict:
    return yaml.safe_load(generated)


def operations(schema: dict) -> dict[str, tuple[str, str, dict]]:
    return {
        operation["operationId"]: (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    }


def test_committed_openapi_yaml_is_current(generated):
    committed = Path(settings.BASE_DIR) / "openapi.yaml"
    assert committed.read_text() == generated, "openapi.yaml is stale: run `make openapi`"


def test_operation_ids_are_short_stable_snake_case(schema):
    ids = operations(schema)
    assert set(ids) == OPERATIONS
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", name) for name in ids)


def test_every_operation_documents_its_errors(schema):
    error = {"$ref": "#/components/schemas/Error"}
    for name, (path, _method, operation) in operations(schema).items():
        responses = operation["responses"]
        assert responses["429"]["content"]["application/json"]["schema"] == error, name
        assert "Retry-After" in responses["429"]["headers"], name
        if "{" in path:
            assert responses["404"]["content"]["application/json"]["schema"] == error, name
        if "requestBody" in operation:
            assert {"400", "413", "415"} <= set(responses), name
        # The signed URL is its own permission (an <img> sends no token), as a share's
        # token is.
        public = {
            "auth_register",
            "auth_token_create",
            "files_signed_content",
            "shared_retrieve",
            "shared_file_content",
        }
        if name not in public:
            assert {"bearerAuth": []} in operation["security"], name
            assert "401" in responses, name
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"type", "code", "detail"}


def test_bearer_scheme(schema):
    assert schema["components"]["securitySchemes"]["bearerAuth"]["type"] == "http"
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_turn_endpoints_offer_an_event_stream(schema):
    ops = operations(schema)
    for name in ("messages_send", "messages_edit", "conversations_regenerate"):
        responses = ops[name][2]["responses"]
        assert set(responses["200"]["content"]) == {"application/json", "text/event-stream"}
        assert set(responses["201"]["content"]) == {"application/json"}
        assert responses["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


def test_component_names_are_clean(schema):
    names = set(schema["components"]["schemas"])
    assert not [name for name in names if name.startswith("Patched")]
    assert {"Message", "Conversation", "TurnResult", "MessagePage", "Token", "Error"} <= names
    assert {"MessageRole", "MessageStatus"} <= names
    # No DRF format-suffix parameter; the one `format` is the export's own (json|markdown).
    assert "format" not in {
        p["name"]
        for name, (_, _, op) in operations(schema).items()
        for p in op.get("parameters", [])
        if name != "conversations_export"
    }


def test_parameter_descriptions_reach_the_sdk(schema):
    # openapi-python-client documents an SDK argument from the parameter's schema.
    history = operations(schema)["messages_list"][2]
    described = {p["name"]: p["schema"].get("description") for p in history["parameters"]}
    assert described["before"] == "Messages older than this id (`older_cursor`)."
    assert described["limit"].startswith("Page size")
