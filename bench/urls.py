"""The product's URLs plus the benchmark-only baseline endpoint.

Also applies the BENCH_ENGINE_THREADS experiment (the turn engine's service calls in a
thread pool, `sync_to_async(thread_sensitive=False)`, instead of the process's one sync
thread): it must wait until the apps are loaded, and the URLconf is loaded by the first
request (every benchmark server answers /healthz before anything else).
"""

import functools
import os

from asgiref.sync import sync_to_async
from django.urls import path

from backend.urls import urlpatterns as product_urlpatterns
from bench.baseline import BaselineMessageList

urlpatterns = [
    path(
        "bench/baseline/conversations/<int:conversation_id>/messages/",
        BaselineMessageList.as_view(),
    ),
    *product_urlpatterns,
]

if os.environ.get("BENCH_ENGINE_THREADS", "") not in ("", "0"):
    import conversations.turns.engine as engine
    import conversations.turns.ticks as ticks

    engine.sync_to_async = ticks.sync_to_async = functools.partial(
        sync_to_async, thread_sensitive=False
    )
