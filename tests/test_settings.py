"""Settings come from the environment; production refuses unsafe defaults."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # Drop what the test settings put into this process's environment.
    dropped = {"SECRET_KEY", "DEBUG", "SECURE_SSL_REDIRECT", "DATABASE_URL", "REDIS_URL"}
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    clean.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "backend.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_debug_off_refuses_the_default_secret_key():
    result = run_manage("check", env={"DEBUG": "0"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_debug_logs_every_sql_statement_in_color():
    result = run_manage(
        "shell",
        "-c",
        "from conversations.models import Agent; list(Agent.objects.filter(slug='x'))",
        env={"DEBUG": "1", "DATABASE_URL": "sqlite:///:memory:"},
    )
    # The query fails on an empty in-memory database, but it was logged first.
    assert 'FROM "conversations_agent"' in result.stdout
    assert "\x1b[" in result.stdout  # colorlog's ANSI colors


def test_production_settings_pass_the_deploy_check():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={
            "DEBUG": "0",
            "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
            "ALLOWED_HOSTS": "confab.example.com",
            "DATABASE_URL": "sqlite:///:memory:",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_postgres_settings_pool_connections_and_keep_the_pool_quiet():
    """PostgreSQL gets psycopg's pool (one per process); its per-checkout INFO lines are
    not logged; DB_POOL=0 turns it off (e.g. behind PgBouncer)."""
    code = (
        "import logging, django; from django.conf import settings; django.setup(); "
        "db = settings.DATABASES['default']; "
        "print(db['OPTIONS'].get('pool'), db['CONN_MAX_AGE'], "
        "logging.getLogger('psycopg.pool').isEnabledFor(logging.INFO))"
    )
    env = {
        "DEBUG": "1",
        "DATABASE_URL": "postgres://confab@127.0.0.1:5432/confab",
        "DB_CONN_MAX_AGE": "60",
    }
    on = run_manage("shell", "-c", code, env=env)
    assert on.returncode == 0, on.stderr
    assert on.stdout.split()[-2:] == ["0", "False"], on.stdout
    assert "'max_size': 20" in on.stdout and "'timeout': 3.0" in on.stdout
    off = run_manage("shell", "-c", code, env={**env, "DB_POOL": "0"})
    assert off.returncode == 0, off.stderr
    assert off.stdout.split()[-3:] == ["None", "60", "False"], off.stdout
