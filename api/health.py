"""Probes for orchestrators and load balancers (docs/deploy.md, "Observability").

- `/healthz`, liveness: 200 while the process answers HTTP. It checks nothing
  else on purpose: a database outage must not make the orchestrator restart every
  worker (they recover on their own, api/middleware.py).
- `/readyz`, readiness: 200 when this process can serve: the database answers, Redis
  answers when `REDIS_URL` is set, and no migration is pending. Otherwise 503 with
  `{"status": "unavailable", "checks": {name: "ok" | "down" | "pending"}}`, which
  names the failed check. The load balancer stops sending traffic until it is 200.

Both are public, unauthenticated and cheap; they reveal nothing but "ok" / "down".
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse

logger = logging.getLogger(__name__)

# Once every migration was found applied, a process does not look again (migrations
# are applied before a release's workers start; a new release is a new process).
_migrations_applied = False


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process is up."""
    return JsonResponse({"status": "ok"})


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        connection.close_if_unusable_or_obsolete()
        return "down"
    return "ok"


def _redis() -> str:
    try:
        client = cache._cache.get_client(write=False)  # type: ignore[attr-defined]
        client.ping()
    except Exception:
        logger.warning("Readiness: Redis does not answer", exc_info=True)
        return "down"
    return "ok"


def _migrations() -> str:
    global _migrations_applied
    if _migrations_applied:
        return "ok"
    try:
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError:
        return "down"
    if pending:
        return "pending"
    _migrations_applied = True
    return "ok"


def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: database, Redis (when configured), migrations applied."""
    checks = {"database": _database()}
    if settings.REDIS_URL:
        checks["redis"] = _redis()
    checks["migrations"] = _migrations() if checks["database"] == "ok" else "unknown"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )
