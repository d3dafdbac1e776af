"""/readyz on the test database: a pending migration makes the process not ready (503,
naming the check), without touching the liveness probe."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

from api import health

pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_migration_check(monkeypatch):
    # The process remembers that it found every migration applied; a new one looks again.
    monkeypatch.setattr(health, "_migrations_applied", False)


def test_ready_when_every_migration_is_applied(client, fresh_migration_check):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["migrations"] == "ok"


def test_a_pending_migration_is_503_and_named(client, fresh_migration_check):
    leaf = max(MigrationLoader(connection).graph.leaf_nodes("conversations"))
    # Inside the test's transaction: rolled back afterwards.
    MigrationRecorder(connection).record_unapplied(*leaf)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {**response.json()["checks"], "database": "ok", "migrations": "pending"},
    }
    assert client.get("/healthz").status_code == 200
