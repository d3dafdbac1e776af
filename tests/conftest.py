"""Shared fixtures: users, tokens, agents, and the local OpenAI-compatible server.

With DATABASE_URL/REDIS_URL set (CI, `make test`), tests run on PostgreSQL and
the Redis channel layer; otherwise on SQLite and the in-memory layer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from asgiref.sync import SyncToAsync
from django.contrib.auth import get_user_model
from django.db import connections

from conversations.models import Agent, Conversation
from conversations.seed_agents import install_seed_agents
from conversations.services import create_conversation
from tests.support.fakeopenai import fake_openai  # noqa: F401
from tests.support.tokens import make_token

TESTS = Path(__file__).resolve().parent
TIERS = ("e2e", "reliability", "scale")
LIVE_SERVER_FIXTURES = {"live_server_factory", "confab_server"}


def pytest_collection_modifyitems(config, items) -> None:
    """Mark each test with its tier: the folder it lives in, or `e2e` when it starts live
    servers (`make test-fast` runs the rest). Tests that stop PostgreSQL (the `postgres`
    fixture) run last: connections this process held from before the restart can fail
    the first query of an in-process socket test that follows (seen once in CI, in
    test_socket_lifecycle, three tests after a restart), which says nothing about it."""
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0]
        if folder in TIERS:
            item.add_marker(folder)
        elif LIVE_SERVER_FIXTURES & set(item.fixturenames):
            item.add_marker("e2e")
    items.sort(key=lambda item: "postgres" in item.fixturenames)


@pytest.fixture(autouse=True)
def _close_executor_connections():
    """Close DB connections opened by async ORM calls in asgiref's shared thread, so the
    test database can be flushed and dropped (they outlive the test otherwise)."""
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@pytest.fixture
def llm(fake_openai, settings):  # noqa: F811
    """The fake OpenAI server, wired in as Confab's provider for this test."""
    settings.CONFAB_LLM_PROVIDER = "openai"
    settings.OPENAI_BASE_URL = fake_openai.base_url
    return fake_openai


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user(username="alice", password="alice-password-1")


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user(username="mallory", password="mallory-password-1")


@pytest.fixture
def token(user) -> str:
    return make_token(user)


@pytest.fixture
def other_token(other_user) -> str:
    return make_token(other_user)


@pytest.fixture
def seed_agents(db) -> None:
    """The data migration's agents (reinstalled: transactional tests flush the tables)."""
    install_seed_agents(Agent)


@pytest.fixture
def seed_models(db) -> None:
    """The model registry's seed rows (reinstalled: transactional tests flush the tables)."""
    from conversations.llm.registry import LanguageModel, install_seed_models

    install_seed_models(LanguageModel)


@pytest.fixture
def tutor(seed_agents) -> Agent:
    """The seed's language-tutor agent."""
    return Agent.objects.get(slug="language-tutor")


@pytest.fixture
def assistant(seed_agents) -> Agent:
    return Agent.objects.get(slug="assistant")


@pytest.fixture
def plain_agent(db) -> Agent:
    """An agent with no template variables and no greeting."""
    return Agent.objects.create(
        slug="plain",
        name="Plain",
        system_prompt_template="You are a test assistant.",
        model="test-model",
        temperature=0.0,
    )


@pytest.fixture
def conversation(user, plain_agent) -> Conversation:
    return create_conversation(user=user, agent=plain_agent, title="Test chat")


@pytest.fixture
def tutor_conversation(user, tutor) -> Conversation:
    return create_conversation(user=user, agent=tutor, title="Tutor chat")


from tests.support.servers import confab_server, live_server_factory  # noqa: E402,F401
