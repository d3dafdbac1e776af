"""Settings for the benchmarks: the project's settings on a dedicated database.

The benchmarks never touch the development or test databases: they use
`confab_bench` (override with BENCH_DATABASE_URL) and their own Redis prefix.
`bench.urls` adds the page-number baseline endpoint, mounted only here.
"""

import os

os.environ.setdefault("SECRET_KEY", "confab-bench-only-secret-key-0123456789abcdef")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/confab_bench"
)
os.environ.setdefault("CONFAB_REDIS_PREFIX", "confab-bench")
# The benchmarks send far more requests than a user's production rate allows.
os.environ.setdefault("CONFAB_THROTTLE_USER", "10000000/min")
os.environ.setdefault("CONFAB_THROTTLE_TURNS", "10000000/min")
os.environ.setdefault("CONFAB_WS_MAX_PER_USER", "100000")
# Every benchmark client connects from 127.0.0.1: the cap on GraphQL sockets not yet
# authenticated per address would refuse a benchmark's connect wave (4429), which real
# clients, each from its own address, never meet.
os.environ.setdefault("CONFAB_WS_MAX_UNAUTHENTICATED_PER_ADDRESS", "100000")

from backend.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
CONFAB_WS_ALLOWED_ORIGINS = ["*"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CONFAB_LLM_PROVIDER = os.environ.get("CONFAB_LLM_PROVIDER", "openai")
OPENAI_API_KEY = "bench-key"
LOGGING["root"]["level"] = os.environ.get("LOG_LEVEL", "WARNING")  # noqa: F405

# BENCH_SWITCH_INTERVAL=0.001: the GIL switch interval (Python's default is 0.005 s).
if os.environ.get("BENCH_SWITCH_INTERVAL"):
    import sys

    sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))
# BENCH_ASYNC_COMMIT=1: synchronous_commit=off for the server's sessions (an experiment:
# how much of the turn path waits on WAL flushes).
if os.environ.get("BENCH_ASYNC_COMMIT", "") not in ("", "0"):
    DATABASES["default"]["OPTIONS"]["options"] = "-c synchronous_commit=off"  # noqa: F405
