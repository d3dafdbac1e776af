"""The HTTP transport: bearer tokens only, JSON errors, GraphiQL only in DEBUG."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from knox.models import get_token_model

pytestmark = pytest.mark.django_db(transaction=True)

ME = "{ me { username } }"


async def test_bearer_and_token_prefixes(gql, token):
    for scheme in ("Bearer", "Token", "bearer"):
        response = await gql.post(ME, headers={"Authorization": f"{scheme} {token}"})
        assert response.status_code == 200
        assert response.json() == {"data": {"me": {"username": "alice"}}}


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer nope", "Basic YWxpY2U6eA==", "Bearer a b", "Bearer " + "x" * 500],
)
async def test_missing_or_bad_credentials_are_401(gql, db, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await gql.post(ME, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {
        "errors": [
            {
                "message": "Authentication credentials were not provided or are invalid.",
                "extensions": {"code": "NOT_AUTHENTICATED", "type": "authentication_error"},
            }
        ]
    }


async def test_expired_or_revoked_tokens_are_401(gql, user, token):
    await get_token_model().objects.filter(user=user).adelete()
    response = await gql.post(ME, token=token)
    assert response.status_code == 401


async def test_inactive_users_are_401(gql, user, token):
    await get_user_model().objects.filter(pk=user.pk).aupdate(is_active=False)
    response = await gql.post(ME, token=token)
    assert response.status_code == 401


async def test_a_session_cookie_does_not_authenticate(gql, user):
    """The view is csrf-exempt, so cookies must never authenticate it."""
    from django.test import AsyncClient

    client = AsyncClient()
    await client.aforce_login(user)
    response = await client.post("/graphql/", {"query": ME}, content_type="application/json")
    assert response.status_code == 401


async def test_csrf_is_not_required_with_a_bearer_token(token):
    from django.test import AsyncClient

    client = AsyncClient(enforce_csrf_checks=True)
    response = await client.post(
        "/graphql/",
        {"query": ME},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200


async def test_queries_by_get_are_refused(gql, token):
    response = await gql.client.get(
        "/graphql/", params={"query": ME}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_subscriptions_over_http_are_refused(gql, token):
    response = await gql.post("subscription { conversationsChanged { __typename } }", token=token)
    assert response.status_code == 400
    assert "subscriptions are not allowed" in response.json()["errors"][0]["message"]


async def test_bad_bodies_are_json_errors(gql, token):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    response = await gql.client.post("/graphql/", content=b"{not json", headers=headers)
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Unable to parse request body as JSON"
    response = await gql.client.post("/graphql/", json={"variables": {}}, headers=headers)
    assert response.status_code == 400


async def test_graphiql_only_in_debug(gql, settings, db):
    headers = {"Accept": "text/html"}
    settings.DEBUG = False
    response = await gql.client.get("/graphql/", headers=headers)
    assert response.status_code == 404
    settings.DEBUG = True
    response = await gql.client.get("/graphql/", headers=headers)
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_a_browser_get_with_a_query_still_needs_a_token(gql, settings, db):
    settings.DEBUG = True
    response = await gql.client.get(
        "/graphql/", params={"query": ME}, headers={"Accept": "text/html"}
    )
    assert response.status_code == 401
