"""Test settings: the project's settings with a test secret key and no HTTPS redirect."""

import os

os.environ.setdefault("SECRET_KEY", "confab-tests-only-secret-key-0123456789abcdef")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

from backend.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CONFAB_LLM_PROVIDER = "openai"
OPENAI_API_KEY = "test-key"
# Replaced per test by the fake server fixture (the `llm` fixture).
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
CONFAB_LLM_MAX_RETRIES = 0
# Tests that wait for a timeout on purpose shorten these through the environment.
CONFAB_LLM_TIMEOUT = env_float("CONFAB_LLM_TIMEOUT", 5.0)  # noqa: F405
CONFAB_LLM_IDLE_TIMEOUT = env_float("CONFAB_LLM_IDLE_TIMEOUT", 5.0)  # noqa: F405
CONFAB_PARTIAL_SAVE_SECONDS = 0.2
# Off in tests: a title call is one more provider request and one more
# conversation.updated after a turn, which every test counting requests or events would
# have to expect. The title tests (tests/conversations/test_titles.py) turn it on, a live
# server through its environment (tests/e2e/test_web_app.py).
CONFAB_AUTO_TITLES = env_bool("CONFAB_AUTO_TITLES", False)  # noqa: F405
# Shared through the environment with live servers the tests start.
CONFAB_REDIS_TEST_PREFIX = os.environ.setdefault(
    "CONFAB_REDIS_PREFIX", f"confab-test-{os.getpid()}"
)
MEDIA_ROOT = BASE_DIR / "build" / "test-media"  # noqa: F405
if REDIS_URL:  # noqa: F405
    # Each test run gets its own channel-layer and cache namespace.
    CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = CONFAB_REDIS_TEST_PREFIX  # noqa: F405
    CACHES["default"]["KEY_PREFIX"] = CONFAB_REDIS_TEST_PREFIX  # noqa: F405
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A test database in a file, not Django's shared-cache memory database: its
    # tables answer "table is locked" at once, ignoring the busy timeout that makes
    # concurrent writers wait, and live test servers (other processes) cannot open it.
    # One file per test process, so runs in several checkouts or shells never meet.
    _test_db_dir = BASE_DIR / "build" / "test-db"  # noqa: F405
    _test_db_dir.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(_test_db_dir / f"confab-{os.getpid()}.sqlite3"),
    }
else:
    # The same on PostgreSQL: test_confab_<pid>, not Django's shared test_<name>.
    DATABASES["default"]["TEST"] = {"NAME": f"test_confab_{os.getpid()}"}  # noqa: F405
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
CONFAB_WS_ALLOWED_ORIGINS = ["*"]
CONFAB_REGISTRATION_OPEN = True
