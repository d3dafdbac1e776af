"""Confab settings, read from the environment.

Every knob a deployment needs is an environment variable (documented in the
README). With nothing set, Confab runs embedded: SQLite, the in-memory channel
layer, a local-memory cache and the offline demo model.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

TRUE_VALUES = {"1", "true", "yes", "on"}


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in TRUE_VALUES


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")

DEFAULT_SECRET_KEY = "django-insecure-confab-development-key-do-not-deploy"
SECRET_KEY = os.environ.get("SECRET_KEY", DEFAULT_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEFAULT_SECRET_KEY:
    # A production process on a well-known key would sign sessions and CSRF
    # tokens that anyone can forge: refuse to start instead.
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Let browser clients read the headers that carry API semantics.
CORS_EXPOSE_HEADERS = ["Idempotent-Replayed", "Retry-After"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "strawberry_django",
    "accounts",
    "conversations",
    "api",
]

# core.middleware: Django's own middleware, with their hooks run on the event
# loop under ASGI instead of one thread hop each (see that module).
MIDDLEWARE = [
    "core.middleware.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "core.middleware.SessionMiddleware",
    "core.middleware.CommonMiddleware",
    "core.middleware.CsrfViewMiddleware",
    "core.middleware.AuthenticationMiddleware",
    "core.middleware.MessageMiddleware",
    "core.middleware.XFrameOptionsMiddleware",
    "api.middleware.DatabaseUnavailableMiddleware",
]
# Django's checks want its own middleware paths; core.middleware checks the same
# things for its subclasses (security.W001-W003 are still reported when missing).
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002", "security.W003"]

ROOT_URLCONF = "backend.urls"
ASGI_APPLICATION = "backend.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves several devices at once: concurrent writers wait
    # for each other instead of failing with "database is locked". WAL lets readers
    # run beside the one writer; IMMEDIATE takes the write lock when a transaction
    # begins, so two transactions never deadlock upgrading a read lock (where the
    # busy timeout cannot help); the timeout is how long a writer waits its turn.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env_float("SQLITE_BUSY_TIMEOUT", 20.0),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Fail fast while PostgreSQL is down instead of hanging the request.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
        "DB_CONNECT_TIMEOUT", 3
    )
    if env_bool("DB_POOL", True):
        # Under ASGI every request runs its sync code in a thread of its own, so
        # persistent connections (CONN_MAX_AGE) cannot be reused and each request paid
        # a new connection. psycopg's pool keeps them per process (bench/BENCHMARKS.md).
        # With CONN_HEALTH_CHECKS Django has the pool check a connection on checkout:
        # after a PostgreSQL restart it hands out fresh connections, not broken ones.
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": env_int("DB_POOL_MIN_SIZE", 2),
            "max_size": env_int("DB_POOL_MAX_SIZE", 20),
            # Waiting for a connection: as long as connecting may take, so a request
            # fails fast (503) while PostgreSQL is down.
            "timeout": env_float("DB_POOL_TIMEOUT", 3.0),
            # A failed attempt to open a connection is retried with exponential backoff
            # until this many seconds, then dropped (the next request starts a fresh
            # one). psycopg's default, 5 minutes, left requests timing out for seconds
            # after PostgreSQL was back while a backed-off attempt slept.
            "reconnect_timeout": 2.0,
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYER_BACKEND = os.environ.get("CONFAB_CHANNEL_LAYER", "pipelined")
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": {
                "pipelined": "core.channel_layers.PipelinedPubSubChannelLayer",
                "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "core": "channels_redis.core.RedisChannelLayer",
            }[CHANNEL_LAYER_BACKEND],
            "CONFIG": {
                # A Redis that is down fails the connect within a second (the
                # consumers then close 4503) instead of the OS's TCP timeout.
                "hosts": [{"address": REDIS_URL, "socket_connect_timeout": 1}],
                "prefix": os.environ.get("CONFAB_REDIS_PREFIX", "confab"),
            },
        }
    }
    CACHES = {
        "default": {
            # One connection pool per process (Django's makes one per request under ASGI).
            "BACKEND": "core.cache.SharedPoolRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CONFAB_REDIS_PREFIX", "confab"),
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "build" / "static"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))

# --- Security headers for production (manage.py check --deploy) -------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- REST ------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["api.rest.renderers.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "api.rest.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "user": os.environ.get("CONFAB_THROTTLE_USER", "600/min"),
        "turns": os.environ.get("CONFAB_THROTTLE_TURNS", "30/min"),
        "login": os.environ.get("CONFAB_THROTTLE_LOGIN", "10/min"),
        "register": os.environ.get("CONFAB_THROTTLE_REGISTER", "10/hour"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

REST_KNOX = {
    "TOKEN_TTL": timedelta(days=env_int("CONFAB_TOKEN_TTL_DAYS", 30)),
    "AUTO_REFRESH": False,
    "TOKEN_LIMIT_PER_USER": env_int("CONFAB_TOKEN_LIMIT_PER_USER", 50),
    "AUTH_HEADER_PREFIX": "Bearer",
}
KNOX_TOKEN_MODEL = "accounts.AccessToken"
# knox's own migrations would create its unused default token table.
MIGRATION_MODULES = {"knox": None}

SPECTACULAR_SETTINGS = {
    "TITLE": "Confab API",
    "DESCRIPTION": "Store LLM chat conversations and run live turns.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from the pinned drf-spectacular-sidecar package, served by
    # Confab (api/rest/docs.py), not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "MessageRole": "conversations.models.MessageRole",
        "MessageStatus": "conversations.models.MessageStatus",
        "PushPlatform": "accounts.models.PushPlatform",
        # The changes feed's `type` discriminators (api/rest/views/sync.py).
        "ConversationUpsertedKind": ["conversation.upserted"],
        "ConversationGoneKind": ["conversation.deleted", "conversation.cleared"],
        "MessageUpsertedKind": ["message.upserted"],
        "MessageDeletedKind": ["message.deleted"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.rest.schema.describe_parameter_schemas",
    ],
}

# --- Confab: registration, limits, LLM, turns ------------------------------
CONFAB_REGISTRATION_OPEN = env_bool("CONFAB_REGISTRATION_OPEN", DEBUG)
# Swagger UI (/api/docs/) and ReDoc (/api/redoc/); the schema (/api/schema/) is public.
CONFAB_API_DOCS = env_bool("CONFAB_API_DOCS", DEBUG)
CONFAB_MAX_CONTENT_CHARS = env_int("CONFAB_MAX_CONTENT_CHARS", 32_000)
CONFAB_MAX_PAGE_SIZE = env_int("CONFAB_MAX_PAGE_SIZE", 200)
CONFAB_DEFAULT_PAGE_SIZE = env_int("CONFAB_DEFAULT_PAGE_SIZE", 50)

OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "")
# Providers of the model registry (conversations.llm.registry, docs/architecture.md).
OPENAI_COMPATIBLE_BASE_URL = os.environ.get("OPENAI_COMPATIBLE_BASE_URL", "")
OPENAI_COMPATIBLE_API_KEY = os.environ.get("OPENAI_COMPATIBLE_API_KEY", "")
ANTHROPIC_API_KEY = os.environ.get("ANTHROPIC_API_KEY", "")
ANTHROPIC_BASE_URL = os.environ.get("ANTHROPIC_BASE_URL", "")
GOOGLE_API_KEY = os.environ.get("GOOGLE_API_KEY", "")
GOOGLE_BASE_URL = os.environ.get("GOOGLE_BASE_URL", "")
OLLAMA_BASE_URL = os.environ.get("OLLAMA_BASE_URL", "")
# "auto" (each model's provider from the registry) when any provider is configured,
# otherwise the offline demo model; CONFAB_LLM_PROVIDER=demo, openai, anthropic, …
# forces one provider for every model.
CONFAB_LLM_PROVIDER = os.environ.get(
    "CONFAB_LLM_PROVIDER",
    "auto"
    if any(
        (
            OPENAI_API_KEY,
            OPENAI_BASE_URL,
            OPENAI_COMPATIBLE_BASE_URL,
            ANTHROPIC_API_KEY,
            ANTHROPIC_BASE_URL,
            GOOGLE_API_KEY,
            OLLAMA_BASE_URL,
        )
    )
    else "demo",
)
CONFAB_LLM_MODEL = os.environ.get("CONFAB_LLM_MODEL", "")
CONFAB_LLM_TIMEOUT = env_float("CONFAB_LLM_TIMEOUT", 60.0)
CONFAB_LLM_MAX_RETRIES = env_int("CONFAB_LLM_MAX_RETRIES", 2)
CONFAB_LLM_IDLE_TIMEOUT = env_float("CONFAB_LLM_IDLE_TIMEOUT", 60.0)

CONFAB_HISTORY_WINDOW = env_int("CONFAB_HISTORY_WINDOW", 40)
CONFAB_TOOL_MAX_ROUNDS = env_int("CONFAB_TOOL_MAX_ROUNDS", 4)
CONFAB_TOOL_TIMEOUT = env_float("CONFAB_TOOL_TIMEOUT", 10.0)
# MCP tool servers (conversations/llm/mcp.py): how long a server's tool list is kept,
# how long a server that failed to list is left alone, and the listing's deadline.
CONFAB_MCP_TOOLS_TTL = env_float("CONFAB_MCP_TOOLS_TTL", 300.0)
CONFAB_MCP_FAILURE_TTL = env_float("CONFAB_MCP_FAILURE_TTL", 10.0)
CONFAB_MCP_LIST_TIMEOUT = env_float("CONFAB_MCP_LIST_TIMEOUT", 5.0)
CONFAB_DELTA_FLUSH_SECONDS = env_float("CONFAB_DELTA_FLUSH_SECONDS", 0.03)
CONFAB_PARTIAL_SAVE_SECONDS = env_float("CONFAB_PARTIAL_SAVE_SECONDS", 0.5)
CONFAB_TURN_HEARTBEAT_SECONDS = env_float("CONFAB_TURN_HEARTBEAT_SECONDS", 1.0)
CONFAB_TURN_STALE_SECONDS = env_float("CONFAB_TURN_STALE_SECONDS", 30.0)
# Admission control: turns one process starts or runs at once (beyond: 503
# TURN_CAPACITY_REACHED, nothing stored), and the turn engine's database threads
# (each holds a pooled connection during one service call: keep below DB_POOL_MAX_SIZE).
CONFAB_MAX_TURNS_PER_PROCESS = env_int("CONFAB_MAX_TURNS_PER_PROCESS", 500)
CONFAB_TURN_DB_THREADS = env_int("CONFAB_TURN_DB_THREADS", 8)

# The changes feed keeps this many days of changes (older cursors: 410, full re-sync).
CONFAB_SYNC_RETENTION_DAYS = env_float("CONFAB_SYNC_RETENTION_DAYS", 30.0)
CONFAB_SYNC_MAX_PAGE_SIZE = env_int("CONFAB_SYNC_MAX_PAGE_SIZE", 500)

# Notifications when a reply ends (conversations/notifications): a webhook (Standard
# Webhooks signatures) and Web Push (VAPID). Both off until configured.
CONFAB_WEBHOOK_URL = os.environ.get("CONFAB_WEBHOOK_URL", "")
CONFAB_WEBHOOK_SECRET = os.environ.get("CONFAB_WEBHOOK_SECRET", "")
CONFAB_VAPID_PRIVATE_KEY = os.environ.get("CONFAB_VAPID_PRIVATE_KEY", "")
CONFAB_VAPID_PUBLIC_KEY = os.environ.get("CONFAB_VAPID_PUBLIC_KEY", "")
CONFAB_VAPID_SUBJECT = os.environ.get("CONFAB_VAPID_SUBJECT", "mailto:admin@localhost")
CONFAB_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS = env_bool("CONFAB_WEBPUSH_ALLOW_PRIVATE_ENDPOINTS")
CONFAB_NOTIFY_MAX_ATTEMPTS = env_int("CONFAB_NOTIFY_MAX_ATTEMPTS", 8)
CONFAB_NOTIFY_RETRY_SECONDS = env_float("CONFAB_NOTIFY_RETRY_SECONDS", 5.0)
CONFAB_NOTIFY_TIMEOUT = env_float("CONFAB_NOTIFY_TIMEOUT", 10.0)
if CONFAB_WEBHOOK_URL and not CONFAB_WEBHOOK_SECRET.startswith("whsec_"):
    raise ImproperlyConfigured("CONFAB_WEBHOOK_URL needs CONFAB_WEBHOOK_SECRET (whsec_…).")

CONFAB_SSE_KEEPALIVE_SECONDS = env_float("CONFAB_SSE_KEEPALIVE_SECONDS", 15.0)
CONFAB_WS_MAX_PER_USER = env_int("CONFAB_WS_MAX_PER_USER", 20)
CONFAB_WS_IDLE_TIMEOUT = env_float("CONFAB_WS_IDLE_TIMEOUT", 300.0)
CONFAB_WS_MAX_FRAME_BYTES = env_int("CONFAB_WS_MAX_FRAME_BYTES", 64_000)
CONFAB_GRAPHQL_MAX_SUBSCRIPTIONS = env_int("CONFAB_GRAPHQL_MAX_SUBSCRIPTIONS", 10)
CONFAB_GRAPHQL_MAX_DEPTH = env_int("CONFAB_GRAPHQL_MAX_DEPTH", 10)
CONFAB_GRAPHQL_MAX_ALIASES = env_int("CONFAB_GRAPHQL_MAX_ALIASES", 30)
CONFAB_GRAPHQL_MAX_TOKENS = env_int("CONFAB_GRAPHQL_MAX_TOKENS", 2_000)
CONFAB_GRAPHQL_INTROSPECTION = env_bool("CONFAB_GRAPHQL_INTROSPECTION", DEBUG)
CONFAB_GRAPHQL_MAX_DOCUMENT_BYTES = env_int("CONFAB_GRAPHQL_MAX_DOCUMENT_BYTES", 32_000)
# What one operation may return: objects (page sizes multiplied through aliases,
# fragments and nesting: api/graphql/cost.py), and bytes of JSON.
CONFAB_GRAPHQL_MAX_COST = env_int("CONFAB_GRAPHQL_MAX_COST", 2_000)
CONFAB_GRAPHQL_MAX_RESPONSE_BYTES = env_int("CONFAB_GRAPHQL_MAX_RESPONSE_BYTES", 16_000_000)
CONFAB_GRAPHQL_CONNECTION_INIT_SECONDS = env_float("CONFAB_GRAPHQL_CONNECTION_INIT_SECONDS", 10.0)
CONFAB_WS_ALLOWED_ORIGINS = env_list("CONFAB_WS_ALLOWED_ORIGINS", "*" if DEBUG else "")

DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("CONFAB_MAX_BODY_BYTES", 256_000)

# Request heads, when uvicorn runs with backend.http_protocol (make run, docs/deploy.md):
# 408 when a head takes longer than this, 431 when it is larger.
CONFAB_HTTP_HEADER_TIMEOUT = env_float("CONFAB_HTTP_HEADER_TIMEOUT", 10.0)
CONFAB_HTTP_MAX_HEADER_BYTES = env_int("CONFAB_HTTP_MAX_HEADER_BYTES", 32 * 1024)

# --- Logging: the seed's recipe, SQL to stdout through colorlog in DEBUG ----
LOGGING = {
    "version": 1,
    # Keep uvicorn's and other libraries' loggers alive.
    "disable_existing_loggers": False,
    "formatters": {
        "color": {
            "()": "colorlog.ColoredFormatter",
            "format": "%(log_color)s[%(asctime)s] %(levelname)s %(name)s: %(message)s",
            "log_colors": {
                "DEBUG": "blue",
                "INFO": "green",
                "WARNING": "yellow",
                "ERROR": "red",
                "CRITICAL": "bold_red",
            },
        },
    },
    "handlers": {
        "console": {
            "class": "colorlog.StreamHandler",
            "formatter": "color",
            "stream": "ext://sys.stdout",
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {
            "handlers": ["console"],
            "level": "DEBUG" if DEBUG else "INFO",
            "propagate": False,
        },
        # psycopg's pool logs every checkout and return at INFO.
        "psycopg.pool": {"level": "WARNING"},
    },
}
