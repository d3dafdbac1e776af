"""A Redis cache backend whose connection pool is shared by the whole process.

Django's `RedisCache` keeps its redis-py connection pool on the cache object,
and Django makes one cache object per thread or async context. Under ASGI
each request (and each websocket connection) runs in a context of its own, so
every request built a new pool and opened a new TCP connection to Redis for
its throttle check, and never reused it. Measured in bench/history_paging.py
and bench/rest_throughput.py (see bench/BENCHMARKS.md). redis-py pools are
thread-safe, so one pool per server and process serves every context.

Use: `CACHES["default"]["BACKEND"] = "backend.cache.SharedPoolRedisCache"`.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class SharedPoolRedisCacheClient(RedisCacheClient):
    """`RedisCacheClient` with its connection pools kept per process, not per instance."""

    _shared_pools: ClassVar[dict[tuple[str, str], Any]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def _get_connection_pool(self, write: bool) -> Any:
        index = self._get_connection_pool_index(write)
        key = (self._servers[index], repr(sorted(self._pool_options.items())))
        pool = self._shared_pools.get(key)
        if pool is None:
            with self._shared_lock:
                pool = self._shared_pools.get(key)
                if pool is None:
                    pool = self._pool_class.from_url(self._servers[index], **self._pool_options)
                    self._shared_pools[key] = pool
        return pool


class SharedPoolRedisCache(RedisCache):
    """Django's Redis cache backend using `SharedPoolRedisCacheClient`."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
