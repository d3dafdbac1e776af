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
CORS_EXPOSE_HEADERS = ["Idempotent-Replayed", "Retry-After", "X-Request-ID"]

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
    # First: the HTTP metrics (core/metrics.py) and the request id (core/request_id.py)
    # see every response, the other middleware's included.
    "core.metrics.HttpMetricsMiddleware",
    "core.request_id.RequestIdMiddleware",
    "core.middleware.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "core.middleware.UnsafeTextMiddleware",
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
    # Behind PgBouncer in transaction mode (docs/deploy.md): a server-side cursor (a
    # named cursor of QuerySet.iterator()) lives in the session, which the next
    # transaction may not have.
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool("DB_DISABLE_SERVER_SIDE_CURSORS")
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

# A PostgreSQL streaming replica for the reads that may lag (history pages, search, the
# changes feed), with read-your-writes (core/replicas.py, docs/deploy.md).
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "")
CONFAB_REPLICA_RYW_SECONDS = env_int("CONFAB_REPLICA_RYW_SECONDS", 600)
CONFAB_REPLICA_RETRY_SECONDS = env_float("CONFAB_REPLICA_RETRY_SECONDS", 5.0)
if DATABASE_REPLICA_URL:
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_REPLICA_URL needs a PostgreSQL DATABASE_URL.")
    _replica = dj_database_url.parse(DATABASE_REPLICA_URL, conn_health_checks=True)
    # The primary's connection options and pool settings (a pool of its own).
    _replica["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    _replica["DISABLE_SERVER_SIDE_CURSORS"] = DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"]
    _replica["OPTIONS"] = {
        key: dict(value) if isinstance(value, dict) else value
        for key, value in DATABASES["default"]["OPTIONS"].items()
    }
    # Tests run against one database: the replica alias reads it too.
    _replica["TEST"] = {"MIRROR": "default"}
    DATABASES["replica"] = _replica
    DATABASE_ROUTERS = ["core.replicas.ReplicaRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
# Every Redis client (channel layer, cache, rate-limit counters) gives up on a connect
# after CONFAB_REDIS_CONNECT_TIMEOUT and on a reply after CONFAB_REDIS_SOCKET_TIMEOUT
# seconds: a Redis that hangs (accepts, never answers) fails publishes and cache calls
# fast, as a Redis that is down does, instead of blocking them for ever.
CONFAB_REDIS_CONNECT_TIMEOUT = env_float("CONFAB_REDIS_CONNECT_TIMEOUT", 1.0)
CONFAB_REDIS_SOCKET_TIMEOUT = env_float("CONFAB_REDIS_SOCKET_TIMEOUT", 2.0)
REDIS_CLIENT_OPTIONS = {
    "socket_connect_timeout": CONFAB_REDIS_CONNECT_TIMEOUT,
    "socket_timeout": CONFAB_REDIS_SOCKET_TIMEOUT,
}
# Redis with Sentinel failover instead of one REDIS_URL: "host:port,host:port,..." of the
# sentinels and the name they monitor (docs/deploy.md). Channel layer, cache and rate
# limits then always talk to the current master.
REDIS_SENTINELS = [
    (host, int(port))
    for host, port in (entry.rsplit(":", 1) for entry in env_list("REDIS_SENTINELS"))
]
REDIS_SENTINEL_MASTER = os.environ.get("REDIS_SENTINEL_MASTER", "")
REDIS_SENTINEL_DB = env_int("REDIS_SENTINEL_DB", 0)
if REDIS_SENTINELS and not REDIS_SENTINEL_MASTER:
    raise ImproperlyConfigured("REDIS_SENTINELS needs REDIS_SENTINEL_MASTER.")
# Sentinels that do not answer within a second are skipped for the next one.
REDIS_SENTINEL_KWARGS = {"socket_connect_timeout": 1, "socket_timeout": 1}
if REDIS_URL or REDIS_SENTINELS:
    CHANNEL_LAYER_BACKEND = os.environ.get("CONFAB_CHANNEL_LAYER", "pipelined")
    if REDIS_SENTINELS:
        _layer_host = {
            "sentinels": REDIS_SENTINELS,
            "master_name": REDIS_SENTINEL_MASTER,
            "sentinel_kwargs": REDIS_SENTINEL_KWARGS,
            "db": REDIS_SENTINEL_DB,
            **REDIS_CLIENT_OPTIONS,
        }
        _cache_location = f"redis-sentinel://{REDIS_SENTINEL_MASTER}/{REDIS_SENTINEL_DB}"
        _cache_sentinel = {
            "sentinels": REDIS_SENTINELS,
            "sentinel_master": REDIS_SENTINEL_MASTER,
            "db": REDIS_SENTINEL_DB,
        }
    else:
        # A Redis that is down fails the connect within a second (the consumers then
        # close 4503) instead of the OS's TCP timeout; one that hangs fails each
        # publish after the socket timeout.
        _layer_host = {"address": REDIS_URL, **REDIS_CLIENT_OPTIONS}
        _cache_location, _cache_sentinel = REDIS_URL, {}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": {
                "pipelined": "core.channel_layers.PipelinedPubSubChannelLayer",
                "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
                "core": "channels_redis.core.RedisChannelLayer",
            }[CHANNEL_LAYER_BACKEND],
            "CONFIG": {
                "hosts": [_layer_host],
                "prefix": os.environ.get("CONFAB_REDIS_PREFIX", "confab"),
            },
        }
    }
    CACHES = {
        "default": {
            # One connection pool per process (Django's makes one per request under ASGI).
            "BACKEND": "core.cache.SharedPoolRedisCache",
            "LOCATION": _cache_location,
            "KEY_PREFIX": os.environ.get("CONFAB_REDIS_PREFIX", "confab"),
            "OPTIONS": {**REDIS_CLIENT_OPTIONS, **_cache_sentinel},
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
        "shared": os.environ.get("CONFAB_THROTTLE_SHARED", "120/min"),
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
        "FeedbackRating": "conversations.feedback.models.Rating",
        # The live events' `type` discriminators (api/rest/event_schemas.py).
        "MessageEventKind": ["message.created", "message.completed"],
        "MessageFailedKind": ["message.failed"],
        "MessageDeltaKind": ["message.delta"],
        "BranchChangedKind": ["conversation.branch_changed"],
        "ConversationEventKind": [
            "conversation.created",
            "conversation.updated",
            "conversation.cleared",
            "conversation.deleted",
        ],
        "OnBusy": "conversations.models.OnBusy",
        # Tool approval (conversations.approvals).
        "ToolCallDecision": ["approved", "denied"],
        "ToolCallDecidedBy": ["user", "timeout", "cancel"],
        "ToolApprovalRequestedKind": ["tool.approval_requested"],
        "ToolApprovalDecidedKind": ["tool.approval_decided"],
        # The usage report's grouping (api/rest/views/usage.py).
        "UsageGroupBy": ["day", "model", "conversation"],
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
# Seconds a tool call that needs the user's approval waits for it; then it is denied and
# the turn goes on (conversations.approvals).
CONFAB_TOOL_APPROVAL_TIMEOUT = env_float("CONFAB_TOOL_APPROVAL_TIMEOUT", 3600.0)
# Automatic titles (conversations/titles): after the first reply of an untitled
# conversation its own model names it, in the background, bounded per call (tokens,
# seconds) and per process (calls at once); not counted in the user's turn budget.
CONFAB_AUTO_TITLES = env_bool("CONFAB_AUTO_TITLES", True)
CONFAB_TITLE_MAX_TOKENS = env_int("CONFAB_TITLE_MAX_TOKENS", 32)
CONFAB_TITLE_TIMEOUT = env_float("CONFAB_TITLE_TIMEOUT", 20.0)
CONFAB_TITLE_MAX_CONCURRENT = env_int("CONFAB_TITLE_MAX_CONCURRENT", 16)
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
# Of those, one user's at most (beyond: 429 USER_TURN_CAPACITY_REACHED); 0: a quarter of
# CONFAB_MAX_TURNS_PER_PROCESS, at least 1.
CONFAB_MAX_TURNS_PER_USER = env_int("CONFAB_MAX_TURNS_PER_USER", 0)
CONFAB_TURN_DB_THREADS = env_int("CONFAB_TURN_DB_THREADS", 8)

# Usage and quotas (conversations/usage). Prices of models the registry has none for
# (USD per million tokens). Quotas per user, per UTC day and month, in tokens and in
# USD: unset means no limit; the admin overrides them per user (UserQuota). An admitted
# turn counts for CONFAB_QUOTA_TURN_RESERVE_TOKENS until it ends (its reservation).
CONFAB_PRICE_INPUT_PER_MILLION = os.environ.get("CONFAB_PRICE_INPUT_PER_MILLION", "0")
CONFAB_PRICE_OUTPUT_PER_MILLION = os.environ.get("CONFAB_PRICE_OUTPUT_PER_MILLION", "0")


def env_optional_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


def env_optional_str(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


CONFAB_QUOTA_TOKENS_PER_DAY = env_optional_int("CONFAB_QUOTA_TOKENS_PER_DAY")
CONFAB_QUOTA_TOKENS_PER_MONTH = env_optional_int("CONFAB_QUOTA_TOKENS_PER_MONTH")
CONFAB_QUOTA_COST_PER_DAY = env_optional_str("CONFAB_QUOTA_COST_PER_DAY")
CONFAB_QUOTA_COST_PER_MONTH = env_optional_str("CONFAB_QUOTA_COST_PER_MONTH")
CONFAB_QUOTA_TURN_RESERVE_TOKENS = env_int("CONFAB_QUOTA_TURN_RESERVE_TOKENS", 2000)

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
# While a process has open sockets, how often it checks its channel layer answers
# (conversations/live.py: a failed layer closes them 4503 so clients resume).
CONFAB_LIVE_CHECK_SECONDS = env_float("CONFAB_LIVE_CHECK_SECONDS", 1.0)
CONFAB_WS_MAX_PER_USER = env_int("CONFAB_WS_MAX_PER_USER", 20)
CONFAB_WS_IDLE_TIMEOUT = env_float("CONFAB_WS_IDLE_TIMEOUT", 300.0)
CONFAB_WS_MAX_FRAME_BYTES = env_int("CONFAB_WS_MAX_FRAME_BYTES", 64_000)
# Websocket lifecycle (conversations/socket_lifecycle.py, docs/clients.md "Close codes"):
# how often each process re-checks its sockets' tokens (expiry, deactivation); a
# token bucket of client frames per socket (a frame costs 1, a chat `resume` more);
# messages per `resume` page; unauthenticated GraphQL sockets per client address.
CONFAB_WS_AUTH_CHECK_SECONDS = env_float("CONFAB_WS_AUTH_CHECK_SECONDS", 5.0)
CONFAB_WS_FRAME_RATE = env_float("CONFAB_WS_FRAME_RATE", 10.0)
CONFAB_WS_FRAME_BURST = env_int("CONFAB_WS_FRAME_BURST", 60)
CONFAB_WS_RESUME_PAGE = env_int("CONFAB_WS_RESUME_PAGE", 100)
CONFAB_WS_MAX_UNAUTHENTICATED_PER_ADDRESS = env_int("CONFAB_WS_MAX_UNAUTHENTICATED_PER_ADDRESS", 20)
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
# Larger body limits for some path prefixes (longest prefix wins), enforced at the ASGI
# level before the body is read (core/body_limit.py); elsewhere CONFAB_MAX_BODY_BYTES.
# Uploads: one file (CONFAB_FILE_MAX_BYTES) and the multipart around it.
CONFAB_FILE_MAX_BYTES = env_int("CONFAB_FILE_MAX_BYTES", 20_000_000)
CONFAB_MAX_UPLOAD_BYTES = env_int("CONFAB_MAX_UPLOAD_BYTES", CONFAB_FILE_MAX_BYTES + 64_000)
# Imports: one export document (conversations/exports/imports.py).
CONFAB_IMPORT_MAX_BYTES = env_int("CONFAB_IMPORT_MAX_BYTES", 8_000_000)
CONFAB_BODY_LIMITS = {
    "/api/v1/files/": CONFAB_MAX_UPLOAD_BYTES,
    "/api/v1/conversations/import/": CONFAB_IMPORT_MAX_BYTES,
}

# --- Files and attachments (conversations/files, docs/architecture.md "Files") ---
# Files per message and per user; images' longest side after re-encoding and
# their largest pixel count (beyond: refused before decoding, a decompression bomb);
# text a file gives the model; how long a signed <img> URL lives.
CONFAB_FILES_PER_MESSAGE = env_int("CONFAB_FILES_PER_MESSAGE", 10)
CONFAB_FILES_PER_USER = env_int("CONFAB_FILES_PER_USER", 1_000)
CONFAB_IMAGE_MAX_SIDE = env_int("CONFAB_IMAGE_MAX_SIDE", 2_048)
CONFAB_IMAGE_MAX_PIXELS = env_int("CONFAB_IMAGE_MAX_PIXELS", 50_000_000)
CONFAB_FILE_TEXT_MAX_CHARS = env_int("CONFAB_FILE_TEXT_MAX_CHARS", 20_000)
CONFAB_FILE_URL_TTL = env_int("CONFAB_FILE_URL_TTL", 3_600)

# Request heads, when uvicorn runs with backend.http_protocol (make run, docs/deploy.md):
# 408 when a head takes longer than this, 431 when it is larger.
CONFAB_HTTP_HEADER_TIMEOUT = env_float("CONFAB_HTTP_HEADER_TIMEOUT", 10.0)
CONFAB_HTTP_MAX_HEADER_BYTES = env_int("CONFAB_HTTP_MAX_HEADER_BYTES", 32 * 1024)

# /metrics (core/metrics.py): readable with `Authorization: Bearer <token>`; unset,
# served in DEBUG only (404 otherwise). Multiprocess: PROMETHEUS_MULTIPROC_DIR.
CONFAB_METRICS_TOKEN = os.environ.get("CONFAB_METRICS_TOKEN", "")

# --- Logging: the seed's recipe, SQL to stdout through colorlog in DEBUG ----
# Production (DEBUG off) writes one JSON object per line (core/logs.py); every line
# has the request id of its request or turn (core/request_id.py) and passes the
# token redaction filter. CONFAB_LOG_FORMAT=json|text overrides the choice.
CONFAB_LOG_FORMAT = os.environ.get("CONFAB_LOG_FORMAT", "text" if DEBUG else "json")
_LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    # Keep uvicorn's and other libraries' loggers alive.
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "core.request_id.RequestIdLogFilter"},
        "redact_tokens": {"()": "api.log_redaction.RedactTokens"},
    },
    "formatters": {
        "json": {"()": "core.logs.JsonFormatter"},
        "color": {
            "()": "colorlog.ColoredFormatter",
            "format": "%(log_color)s[%(asctime)s] %(levelname)s %(name)s "
            "[%(request_id)s]: %(message)s",
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
            "formatter": "json" if CONFAB_LOG_FORMAT == "json" else "color",
            "filters": ["request_id", "redact_tokens"],
            "stream": "ext://sys.stdout",
        },
    },
    "root": {"handlers": ["console"], "level": _LOG_LEVEL},
    "loggers": {
        "django.db.backends": {
            "handlers": ["console"],
            "level": "DEBUG" if DEBUG else "INFO",
            "propagate": False,
        },
        # psycopg's pool logs every checkout and return at INFO.
        "psycopg.pool": {"level": "WARNING"},
        # The OpenAI client logs each request's options (the prompt) and headers at
        # DEBUG: never below INFO, whatever LOG_LEVEL says.
        "openai": {"level": _LOG_LEVEL if _LOG_LEVEL not in ("DEBUG", "NOTSET") else "INFO"},
    },
}
if CONFAB_LOG_FORMAT == "json":
    # The ASGI servers' own lines (uvicorn configures its loggers before loading the
    # app) go through the same JSON handler and token redaction.
    for _server_logger in ("uvicorn", "uvicorn.error", "uvicorn.access", "daphne"):
        LOGGING["loggers"][_server_logger] = {"handlers": ["console"], "propagate": False}
