"""ASGI entry point: Django HTTP (REST, GraphQL over HTTP, admin, web app) and
websockets (the chat consumer and GraphQL subscriptions), plus a lifespan
handler that runs, in every process, the periodic jobs (conversations.background)
and the channel-layer watch (conversations.live)."""

import asyncio
import os

from django.core import signals
from django.core.asgi import get_asgi_application
from django.db import close_old_connections, reset_queries

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
# Traces by OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set: before Django loads its
# middleware, which the Django instrumentation extends (core/tracing.py).
from core import tracing

tracing.configure_from_env()
# Django must be set up before models or the GraphQL schema are imported.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.authentication import TokenAuthMiddleware  # noqa: E402
from api import log_redaction  # noqa: E402
from api.middleware import ServiceUnavailableWebsocketMiddleware  # noqa: E402
from backend.routing import websocket_urlpatterns  # noqa: E402
from conversations.background import jobs  # noqa: E402
from conversations.live import watch_layer  # noqa: E402
from conversations.titles.generation import cancel_all as cancel_titles  # noqa: E402
from core import metrics  # noqa: E402
from core.body_limit import BodyLimitMiddleware  # noqa: E402
from core.request_id import RequestIdWebsocketMiddleware  # noqa: E402

# The server's access and handshake logs carry query strings (`?token=`) and, at
# debug level, headers: redact credentials before anything is written.
log_redaction.install()


def skip_request_started_database_hop() -> None:
    """Stop running Django's two database receivers of `request_started` per request.

    Under ASGI a request's sync code runs in a thread of its own (Django's handler
    opens an asgiref ThreadSensitiveContext per request: a new single-thread
    executor), so when the request starts that thread holds no connection and
    `close_old_connections` and `reset_queries` find nothing to do. As sync
    receivers they still cost a thread hop per request (bench/BENCHMARKS.md).
    `request_finished` keeps both: it returns the request's pooled connection.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_started.disconnect(reset_queries)


skip_request_started_database_hop()


class LifespanMiddleware:
    """Answer ASGI lifespan (Channels' router does not) and run background sweeps."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)
        tasks = []
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                tasks = [asyncio.ensure_future(job) for job in [*jobs(), watch_layer()]]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in tasks:
                    task.cancel()
                # Titles being generated stay empty (their attempt is spent).
                cancel_titles()
                # Under PROMETHEUS_MULTIPROC_DIR: this worker's live gauges go away.
                metrics.process_exited()
                await send({"type": "lifespan.shutdown.complete"})
                return


application = LifespanMiddleware(
    ProtocolTypeRouter(
        {
            # Body size limits before Django reads (and spools) the body: core/body_limit.py.
            "http": BodyLimitMiddleware(django_asgi_app),
            "websocket": metrics.WebsocketMetricsMiddleware(
                RequestIdWebsocketMiddleware(
                    ServiceUnavailableWebsocketMiddleware(
                        TokenAuthMiddleware(URLRouter(websocket_urlpatterns))
                    )
                )
            ),
        }
    )
)
