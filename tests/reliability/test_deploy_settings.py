"""Production settings: `manage.py check --deploy` passes, and what it cannot see is safe.

The environment is docs/deploy.md's (PostgreSQL, Redis, a model key, allowed
hosts and origins; DEBUG unset, which means off). Beyond Django's
deploy checks, the settings that would leak or open something in production
are asserted: SQL logging, the browsable API, GraphQL introspection, open
sign-up, wildcard hosts or websocket origins.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The environment of docs/deploy.md.
PRODUCTION = {
    "DATABASE_URL": "postgres://confab:PASSWORD@db.internal:5432/confab",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "SECRET_KEY": "prod-" + "k3y-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOP",
    "ALLOWED_HOSTS": "chat.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://chat.example.com",
    "CONFAB_WS_ALLOWED_ORIGINS": "https://chat.example.com",
    "OPENAI_API_KEY": "sk-production",
}

SHOW = """
import json
from django.conf import settings as s
print(json.dumps({
    "DEBUG": s.DEBUG,
    "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "SECURE_SSL_REDIRECT": s.SECURE_SSL_REDIRECT,
    "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": s.CSRF_COOKIE_SECURE,
    "SECURE_HSTS_SECONDS": s.SECURE_HSTS_SECONDS,
    "X_FRAME_OPTIONS": s.X_FRAME_OPTIONS,
    "renderers": s.REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"],
    "introspection": s.CONFAB_GRAPHQL_INTROSPECTION,
    "api_docs": s.CONFAB_API_DOCS,
    "registration": s.CONFAB_REGISTRATION_OPEN,
    "ws_origins": s.CONFAB_WS_ALLOWED_ORIGINS,
    "sql_log_level": s.LOGGING["loggers"]["django.db.backends"]["level"],
    "engine": s.DATABASES["default"]["ENGINE"],
    "connect_timeout": s.DATABASES["default"]["OPTIONS"].get("connect_timeout"),
    "layer": s.CHANNEL_LAYERS["default"]["BACKEND"],
    "cache": s.CACHES["default"]["BACKEND"],
    "provider": s.CONFAB_LLM_PROVIDER,
}))
"""


def manage(*args: str, without: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """manage.py with the production environment (minus `without`) and nothing of the
    test environment."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR"}
    env = {key: value for key, value in os.environ.items() if key in keep}
    env.update({k: v for k, v in PRODUCTION.items() if k not in without})
    env["DJANGO_SETTINGS_MODULE"] = "backend.settings"
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def shown_settings(without: tuple[str, ...] = ()) -> dict:
    result = manage("shell", "-c", SHOW, without=without)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_environment_passes_the_deploy_check():
    result = manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_are_closed_by_default():
    shown = shown_settings()
    assert shown["DEBUG"] is False
    assert shown["ALLOWED_HOSTS"] == ["chat.example.com"]
    assert shown["SECURE_SSL_REDIRECT"] and shown["SESSION_COOKIE_SECURE"]
    assert shown["CSRF_COOKIE_SECURE"] and shown["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert shown["X_FRAME_OPTIONS"] == "DENY"
    assert shown["renderers"] == ["api.rest.renderers.FastJSONRenderer"]  # no browsable API
    assert shown["introspection"] is False and shown["registration"] is False
    assert shown["api_docs"] is False  # no Swagger UI or ReDoc unless CONFAB_API_DOCS
    assert shown["ws_origins"] == ["https://chat.example.com"]
    assert shown["sql_log_level"] == "INFO"  # SQL (and its parameters) is not logged
    assert shown["engine"] == "django.db.backends.postgresql" and shown["connect_timeout"] == 3
    assert shown["layer"] == "core.channel_layers.PipelinedPubSubChannelLayer"
    assert shown["cache"] == "core.cache.SharedPoolRedisCache"
    # Each model's provider from the registry, since a provider key is set.
    assert shown["provider"] == "auto"


def test_without_configured_origins_cross_origin_websockets_are_refused():
    assert shown_settings(without=("CONFAB_WS_ALLOWED_ORIGINS",))["ws_origins"] == []
    assert shown_settings(without=("ALLOWED_HOSTS",))["ALLOWED_HOSTS"] == []
