"""Nobody sees or touches what is not theirs, on any surface: one sweep over all of them.

Alice owns a conversation with history. Mallory, signed in with her own valid
token, tries every REST route and method (enumerated from Django's URL
resolver), every GraphQL query, mutation and subscription (enumerated from the
schema, over HTTP and over the websocket), and every websocket route
(enumerated from the websocket routing) on Alice's objects, against a live
server. Everywhere the answer is exactly the one for an id that does not exist
(404 `NOT_FOUND`, GraphQL `NOT_FOUND`, close 4404), and afterwards every row of
Alice's is unchanged and the model was never called. A route or field added
later is swept too; one this test cannot fill with Alice's objects fails it
until it is taught.

Per-surface versions of some of these checks live with each surface's tests
(tests/api/rest/test_ownership.py, tests/api/graphql/test_access.py,
tests/conversations/test_consumer.py); this is the cross-surface proof on a
real server process.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from graphql import GraphQLField, get_named_type, is_leaf_type, is_non_null_type
from graphql.pyutils import Undefined
from knox.models import get_token_model
from langchain_core.messages import AIMessage, HumanMessage

from api.graphql.schema import schema
from backend.routing import websocket_urlpatterns
from conversations import services
from conversations.feedback import services as feedback_services
from conversations.files.models import UserFile
from conversations.files.services import create_file
from conversations.models import Conversation, ConversationMessage, MessageFeedback, Project
from conversations.projects import services as project_services
from conversations.shares.models import Share
from conversations.shares.services import create_share
from tests.support.live_clients import auth, chat_socket, graphql_socket, recv_json
from tests.support.rest import comparable
from tests.support.routes import fill, methods_of, owned_routes

pytestmark = pytest.mark.django_db(transaction=True)

MISSING = 2**40
ALL_METHODS = ("get", "head", "post", "put", "patch", "delete", "options")
BODIES = [{"content": "hi", "title": "stolen", "archived": True, "context": {}}, {}, "{not json"]
# Root fields that take no object id: what each may show is checked separately
# (`changes`: tests/conversations/test_sync.py::test_someone_elses_changes_never_appear).
UNSCOPED_FIELDS = {
    "me",
    "agents",
    "conversations",
    "createConversation",
    "conversationsChanged",
    "changes",
    "projects",
    "createProject",
    "search",
    # The model registry is the same for everyone (nothing owned); devices are the
    # caller's own (tests/api/graphql/test_devices.py: another user's is NOT_FOUND).
    "models",
    "devices",
    # The caller's own usage and quota (tests/api/rest/test_usage.py and
    # tests/api/graphql/test_usage.py: another user's usage never shows).
    "usage",
    "quota",
}
# Fields and arguments whose ID is a project's: filled with Alice's project.
PROJECT_FIELDS = {"project", "updateProject", "deleteProject"}
FILLERS = {
    "String": "stolen",
    "Boolean": True,
    "Int": 1,
    "Float": 0.5,
    "JSON": {},
    "FeedbackRating": "UP",
    "OnBusy": "ENQUEUE",
}


@sync_to_async
def alice_history(
    user: Any, plain_agent: Any
) -> tuple[Conversation, ConversationMessage, UserFile]:
    conversation = services.create_conversation(user=user, agent=plain_agent, title="Private")
    services.append_message(conversation=conversation, message=HumanMessage("my secret"))
    message = services.append_message(conversation=conversation, message=AIMessage("kept"))
    file = create_file(user=user, data=b"my private notes", name="notes.txt")
    feedback_services.set_feedback(user=user, message=message, rating="up", comment="mine")
    return conversation, message, file


@sync_to_async
def alice_share(user: Any, conversation: Conversation) -> Share:
    return create_share(user=user, conversation=conversation)


@sync_to_async
def alice_project(user: Any) -> Project:
    return project_services.create_project(user=user, name="Private", instructions="secret")


@sync_to_async
def snapshot(user: Any) -> list[Any]:
    """Every row of Alice's, and her tokens."""
    return [
        list(Conversation.objects.filter(user=user).order_by("pk").values()),
        list(ConversationMessage.objects.filter(conversation__user=user).order_by("pk").values()),
        list(UserFile.objects.filter(user=user).order_by("pk").values()),
        sorted(get_token_model().objects.filter(user=user).values_list("digest", flat=True)),
        get_user_model().objects.filter(pk=user.pk).values().get(),
        list(Project.objects.filter(user=user).order_by("pk").values()),
        list(MessageFeedback.objects.filter(user=user).order_by("pk").values()),
        list(Share.objects.filter(user=user).order_by("pk").values()),
    ]


def graphql_document(
    operation: str, name: str, field: GraphQLField, target: int, project: int | None = None
) -> tuple:
    """A document calling `name` with `target` for every ID argument (`project` for a
    project's: a `project` argument, the id of a project field), the required
    arguments, and for mutations every argument, to try to change as much as possible."""
    definitions, arguments, variables = [], [], {}
    for arg_name, arg in field.args.items():
        named = get_named_type(arg.type).name
        required = is_non_null_type(arg.type) and arg.default_value is Undefined
        if (
            named == "ID"
            and project is not None
            and (arg_name == "project" or name in PROJECT_FIELDS)
        ):
            value: Any = project
        elif named == "ID":
            value = target
        elif required or operation == "mutation":
            assert named in FILLERS, f"{name}({arg_name}: {arg.type}): teach FILLERS this type"
            value = FILLERS[named]
        else:
            continue
        definitions.append(f"${arg_name}: {arg.type}")
        arguments.append(f"{arg_name}: ${arg_name}")
        variables[arg_name] = str(value) if named == "ID" else value
    head = f"{operation} Sweep({', '.join(definitions)})" if definitions else operation
    call = f"{name}({', '.join(arguments)})" if arguments else name
    selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
    return f"{head} {{ {call}{selection} }}", variables


def graphql_fields() -> list[tuple[str, str, GraphQLField]]:
    graphql_schema = schema._schema
    roots = {
        "query": graphql_schema.query_type,
        "mutation": graphql_schema.mutation_type,
        "subscription": graphql_schema.subscription_type,
    }
    return [
        (operation, name, field)
        for operation, root in roots.items()
        for name, field in root.fields.items()
    ]


def scoped(field: GraphQLField) -> bool:
    return any(get_named_type(arg.type).name == "ID" for arg in field.args.values())


async def over_websocket(socket: Any, op_id: str, query: str, variables: dict) -> dict:
    """Run one operation on an open graphql-transport-ws socket; its first answer."""
    payload = {"query": query, "variables": variables}
    await socket.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
    while True:
        message = await recv_json(socket)
        if message.get("id") == op_id:
            if message["type"] == "next":
                await socket.send(json.dumps({"id": op_id, "type": "complete"}))
            return {"type": message["type"], "payload": message["payload"]}


def not_found(answer: dict) -> bool:
    """A GraphQL answer (HTTP body, or websocket next/error payload) that is NOT_FOUND."""
    errors = answer.get("errors") if isinstance(answer, dict) else answer
    codes = [error.get("extensions", {}).get("code") for error in errors or []]
    data = answer.get("data") if isinstance(answer, dict) else None
    return codes == ["NOT_FOUND"] and data is None


async def test_another_users_objects_are_not_found_on_every_surface(
    live_server_factory, llm, user, other_user, token, other_token, plain_agent
):
    # The sweep sends hundreds of frames on one socket, and more REST requests a minute
    # than a user may: past the per-socket frame budget and the per-user rate (each
    # tested on its own: test_socket_lifecycle.py, tests/api/rest/test_throttles.py).
    server = live_server_factory(
        extra_env={"CONFAB_WS_FRAME_BURST": "100000", "CONFAB_THROTTLE_USER": "100000/min"}
    )
    conversation, message, file = await alice_history(user, plain_agent)
    project = await alice_project(user)
    share = await alice_share(user, conversation)
    before = await snapshot(user)
    checked: dict[str, int] = {"rest": 0, "graphql": 0, "websocket": 0}

    async with httpx.AsyncClient(
        base_url=server.url, headers=auth(other_token), timeout=30
    ) as mallory:
        # REST: every route with a path parameter, every method (those a route does not
        # serve too: 405 for Alice's id and a missing one alike), a few bodies.
        for route, pattern in owned_routes():
            served = methods_of(pattern)
            for method in ALL_METHODS:
                bodies = BODIES if method in ("post", "put", "patch") else [None]
                for body in bodies:
                    kwargs: dict[str, Any] = {}
                    if isinstance(body, dict):
                        kwargs["json"] = body
                    elif body is not None:
                        kwargs["content"] = body
                        kwargs["headers"] = {"Content-Type": "application/json"}
                    theirs = await mallory.request(
                        method,
                        fill(
                            route,
                            conversation.pk,
                            message.pk,
                            file_id=file.pk,
                            project_id=project.pk,
                            share_id=share.pk,
                        ),
                        **kwargs,
                    )
                    missing = await mallory.request(method, fill(route, MISSING, MISSING), **kwargs)
                    label = f"{method.upper()} {route} {body!r}"
                    assert theirs.status_code == missing.status_code, label
                    assert comparable(theirs) == comparable(missing), label
                    if method in served and method != "head":
                        assert theirs.status_code == 404, label
                        assert theirs.json()["code"] == "NOT_FOUND", label
                    checked["rest"] += 1

        # GraphQL over HTTP: every query and mutation with an ID argument.
        fields = graphql_fields()
        unscoped = {name for _, name, field in fields if not scoped(field)}
        assert unscoped <= UNSCOPED_FIELDS, (
            f"teach this test what {unscoped - UNSCOPED_FIELDS} may show"
        )
        for operation, name, field in fields:
            if operation == "subscription" or not scoped(field):
                continue
            query, variables = graphql_document(operation, name, field, conversation.pk, project.pk)
            body = {"query": query, "variables": variables}
            theirs = (await mallory.post("/graphql/", json=body)).json()
            body["variables"] = graphql_document(operation, name, field, MISSING)[1]
            missing = (await mallory.post("/graphql/", json=body)).json()
            assert not_found(theirs) and theirs == missing, (name, theirs)
            checked["graphql"] += 1

        # The fields without an id show Mallory only her own things.
        listed = await mallory.post(
            "/graphql/",
            json={"query": "{ me { id } conversations { edges { node { id } } } }"},
        )
        data = listed.json()["data"]
        assert data["me"]["id"] == str(other_user.pk)
        assert str(conversation.pk) not in [e["node"]["id"] for e in data["conversations"]["edges"]]
        rest_list = (await mallory.get("/api/v1/conversations/")).json()["results"]
        assert conversation.pk not in [c["id"] for c in rest_list]
        assert (await mallory.get("/api/v1/projects/")).json()["results"] == []
        projects = await mallory.post("/graphql/", json={"query": "{ projects { id } }"})
        assert projects.json()["data"]["projects"] == []
        # Filtering by Alice's project shows nothing of hers either.
        filtered = await mallory.get("/api/v1/conversations/", params={"project": project.pk})
        assert filtered.json()["results"] == []

    # GraphQL over the websocket: every operation with an ID argument, subscriptions too.
    socket = await graphql_socket(server, other_token)
    changes = {"query": "subscription { conversationsChanged { __typename } }"}
    await socket.send(json.dumps({"id": "changes", "type": "subscribe", "payload": changes}))
    for index, (operation, name, field) in enumerate(fields):
        if not scoped(field):
            continue
        query, variables = graphql_document(operation, name, field, conversation.pk, project.pk)
        theirs = await over_websocket(socket, f"theirs-{index}", query, variables)
        missing_variables = graphql_document(operation, name, field, MISSING)[1]
        missing = await over_websocket(socket, f"missing-{index}", query, missing_variables)
        assert not_found(theirs["payload"]) and theirs == missing, (name, theirs)
        checked["graphql"] += 1

    # Websocket routes: every one with an object in its path.
    for pattern in websocket_urlpatterns:
        route = str(pattern.pattern)
        params = set(pattern.pattern.converters)
        if not params:
            assert route == "graphql/", f"{route}: teach this test about this websocket route"
            continue
        assert params == {"conversation_pk"}, f"{route}: teach this test how to fill {params}"
        for target in (conversation.pk, MISSING):
            url = f"{server.ws_url}/{route.replace('<int:conversation_pk>', str(target))}"
            for kwargs in ({"additional_headers": auth(other_token)}, {}):
                full = url if kwargs else f"{url}?token={other_token}"
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    async with websockets.connect(full, **kwargs) as chat:
                        await recv_json(chat)
                assert closed.value.rcvd.code == 4404, route
                checked["websocket"] += 1

    # Alice acts on her conversation: Mallory's conversationsChanged hears nothing of it.
    async with httpx.AsyncClient(base_url=server.url, headers=auth(token)) as alice:
        renamed = await alice.patch(
            f"/api/v1/conversations/{conversation.pk}/", json={"title": "Renamed by Alice"}
        )
        assert renamed.status_code == 200
    with pytest.raises(TimeoutError):
        while True:
            frame = await recv_json(socket, timeout=1.0)
            assert frame.get("id") != "changes", frame
    await socket.close()

    # Alice's file, attached by Mallory to a message in her own conversation: not found on
    # every surface, exactly as a file that does not exist; nothing stored, no model call.
    own = await sync_to_async(services.create_conversation)(user=other_user, agent=plain_agent)
    async with httpx.AsyncClient(
        base_url=server.url, headers=auth(other_token), timeout=30
    ) as mallory:
        url = f"/api/v1/conversations/{own.pk}/messages/"
        answers = [
            await mallory.post(url, json={"content": "x", "attachments": [target]})
            for target in (file.pk, MISSING)
        ]
        assert answers[0].status_code == 404
        assert comparable(answers[0]) == comparable(answers[1])
        send = (
            'mutation($c: ID!, $f: [ID!]) { sendMessage(conversationId: $c, content: "x", '
            "attachments: $f) { __typename } }"
        )
        graphql_answers = [
            (
                await mallory.post(
                    "/graphql/",
                    json={"query": send, "variables": {"c": str(own.pk), "f": [str(target)]}},
                )
            ).json()
            for target in (file.pk, MISSING)
        ]
        assert not_found(graphql_answers[0]) and graphql_answers[0] == graphql_answers[1]
    chat, _ = await chat_socket(server, own.pk, other_token)
    frames = []
    for target in (file.pk, MISSING):
        await chat.send(json.dumps({"type": "message", "content": "x", "attachments": [target]}))
        frames.append(await recv_json(chat))
    await chat.close()
    assert frames[0]["type"] == "error" and frames[0]["code"] == "NOT_FOUND"
    assert frames[0] == frames[1]
    checked["rest"] += 1
    checked["graphql"] += 1
    checked["websocket"] += 1
    assert not await ConversationMessage.objects.filter(conversation=own).aexists()

    after = await snapshot(user)
    after[0][0]["title"] = before[0][0]["title"]  # Alice's own rename
    after[0][0]["updated_at"] = before[0][0]["updated_at"]
    assert after == before
    assert llm.requests == []  # no turn ran on Alice's conversation
    assert checked["rest"] >= 70 and checked["graphql"] >= 19 and checked["websocket"] >= 4, checked
