"""Share links over GraphQL: the same services and shapes as REST."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from conversations import services
from conversations.shares.models import Share
from tests.support.graphql import ERRORS, db, error_codes

pytestmark = pytest.mark.django_db(transaction=True)

FIELDS = "id conversationId token url upToMessageId createdAt"
CREATE = f"""
mutation($id: ID!) {{ createShare(conversationId: $id) {{ share {{ {FIELDS} }} {ERRORS} }} }}
"""
REVOKE = f"""
mutation($id: ID!, $share: ID!) {{
  revokeShare(conversationId: $id, shareId: $share) {{ revokedId {ERRORS} }}
}}
"""
SHARES = f"query($id: ID!) {{ shares(conversationId: $id) {{ {FIELDS} }} }}"


async def test_create_list_revoke_and_ownership(gql, token, other_token, conversation):
    empty = await gql.execute(CREATE, {"id": conversation.pk}, token=token)
    assert error_codes(empty) == ["NOTHING_TO_SHARE"]
    await db(services.append_message, conversation=conversation, message=HumanMessage("hi"))
    last = await db(services.append_message, conversation=conversation, message=AIMessage("yo"))

    created = (await gql.data(CREATE, {"id": conversation.pk}, token=token))["createShare"]
    assert created["errors"] == []
    share = created["share"]
    assert share["upToMessageId"] == str(last.pk)
    assert share["conversationId"] == str(conversation.pk)
    assert share["url"].endswith(f"/s/{share['token']}") and len(share["token"]) == 32
    assert (await gql.data(SHARES, {"id": conversation.pk}, token=token))["shares"] == [share]

    for query, variables in (
        (SHARES, {"id": conversation.pk}),
        (CREATE, {"id": conversation.pk}),
        (REVOKE, {"id": conversation.pk, "share": share["id"]}),
    ):
        body = await gql.execute(query, variables, token=other_token)
        assert error_codes(body) == ["NOT_FOUND"], body

    revoked = await gql.data(REVOKE, {"id": conversation.pk, "share": share["id"]}, token=token)
    assert revoked["revokeShare"] == {"revokedId": share["id"], "errors": []}
    assert not await db(Share.objects.filter(pk=share["id"]).exists)
    assert (await gql.data(SHARES, {"id": conversation.pk}, token=token))["shares"] == []
