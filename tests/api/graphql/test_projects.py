"""Projects and pins over GraphQL: the same services and shapes as REST."""

from __future__ import annotations

import pytest

from conversations import services
from conversations.projects import services as project_services
from tests.support.graphql import ERRORS, db, error_codes

pytestmark = pytest.mark.django_db(transaction=True)

PROJECT_FIELDS = "id name instructions defaultAgent createdAt updatedAt"
CREATE = f"""
mutation($name: String!, $instructions: String, $agent: String) {{
  createProject(name: $name, instructions: $instructions, defaultAgent: $agent) {{
    project {{ {PROJECT_FIELDS} }} {ERRORS}
  }}
}}
"""
UPDATE = f"""
mutation($id: ID!, $name: String, $agent: String) {{
  updateProject(id: $id, name: $name, defaultAgent: $agent) {{
    project {{ {PROJECT_FIELDS} }} {ERRORS}
  }}
}}
"""
DELETE = f"mutation($id: ID!) {{ deleteProject(id: $id) {{ deletedId {ERRORS} }} }}"
PROJECTS = f"{{ projects {{ {PROJECT_FIELDS} }} }}"
PROJECT = f"query($id: ID!) {{ project(id: $id) {{ {PROJECT_FIELDS} }} }}"
MOVE = f"""
mutation($id: ID!, $project: ID, $pinned: Boolean) {{
  updateConversation(id: $id, project: $project, pinned: $pinned) {{
    conversation {{ id projectId pinned }} {ERRORS}
  }}
}}
"""
LIST = """
query($project: String, $after: String, $first: Int) {
  conversations(project: $project, after: $after, first: $first) {
    nodes { title projectId pinned }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_project_crud_and_ownership(gql, token, other_token, user, plain_agent):
    created = (
        await gql.data(
            CREATE, {"name": "Thesis", "instructions": "Cite.", "agent": "plain"}, token=token
        )
    )["createProject"]
    assert created["errors"] == []
    project = created["project"]
    assert project["name"] == "Thesis" and project["defaultAgent"] == "plain"
    assert (await gql.data(PROJECTS, token=token))["projects"] == [project]
    assert (await gql.data(PROJECT, {"id": project["id"]}, token=token))["project"] == project

    # Another user: not found, and an empty list.
    assert (await gql.data(PROJECTS, token=other_token))["projects"] == []
    body = await gql.execute(PROJECT, {"id": project["id"]}, token=other_token)
    assert error_codes(body) == ["NOT_FOUND"]
    body = await gql.execute(UPDATE, {"id": project["id"], "name": "x"}, token=other_token)
    assert error_codes(body) == ["NOT_FOUND"]
    body = await gql.execute(DELETE, {"id": project["id"]}, token=other_token)
    assert error_codes(body) == ["NOT_FOUND"]

    bad = (await gql.data(UPDATE, {"id": project["id"], "agent": "nope"}, token=token))[
        "updateProject"
    ]
    assert bad["project"] is None and bad["errors"][0]["field"] == "defaultAgent"
    renamed = (await gql.data(UPDATE, {"id": project["id"], "name": "Paper"}, token=token))[
        "updateProject"
    ]["project"]
    assert renamed["name"] == "Paper" and renamed["defaultAgent"] == "plain"
    deleted = (await gql.data(DELETE, {"id": project["id"]}, token=token))["deleteProject"]
    assert deleted["deletedId"] == project["id"]
    assert (await gql.data(PROJECTS, token=token))["projects"] == []


async def test_move_pin_and_filter(gql, token, user, plain_agent):
    project = await db(project_services.create_project, user=user, name="Work")
    rows = [
        await db(services.create_conversation, user=user, agent=plain_agent, title=f"c{i}")
        for i in range(4)
    ]
    moved = (await gql.data(MOVE, {"id": rows[0].pk, "project": project.pk}, token=token))[
        "updateConversation"
    ]["conversation"]
    assert moved == {"id": str(rows[0].pk), "projectId": str(project.pk), "pinned": False}
    nodes = (await gql.data(LIST, {"project": str(project.pk)}, token=token))["conversations"][
        "nodes"
    ]
    assert [n["title"] for n in nodes] == ["c0"]
    nodes = (await gql.data(LIST, {"project": "none"}, token=token))["conversations"]["nodes"]
    assert [n["title"] for n in nodes] == ["c3", "c2", "c1"]

    await gql.data(MOVE, {"id": rows[1].pk, "pinned": True}, token=token)
    seen, after = [], None
    while True:
        page = (await gql.data(LIST, {"first": 1, "after": after}, token=token))["conversations"]
        seen += [n["title"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["c1", "c3", "c2", "c0"]
