"""A Redis cache backend whose connection pool is shared by the whole process.

Django's `RedisCache` keeps its redis-py connection pool on the cache object,
and Django makes one cache object per thread or async context. Under ASGI
each request (and each websocket connection) runs in a context of its own, so
every request built a new pool and opened a new TCP connection to Redis for
its throttle check, and never reused it. Measured in bench/history_paging.py
and bench/rest_throughput.py (see bench/BENCHMARKS.md). redis-py pools are
thread-safe, so one pool per server and process serves every context.

Use: `CACHES["default"]["BACKEND"] = "core.cache.SharedPoolRedisCache"`.

`count_hit` is the rate limiters' counter, and `add_to_count` / `aadd_to_count` the
counters of open sockets and live followers (`conversations.socket_limits`,
`conversations.presence`): one atomic round trip each on this backend.
"""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from django.core.cache import BaseCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.sentinel import Sentinel, SentinelConnectionPool


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
                    pool = self._new_pool(self._servers[index])
                    self._shared_pools[key] = pool
        return pool

    def _new_pool(self, server: str) -> Any:
        """A pool for `server`; with `sentinels` and `sentinel_master` in OPTIONS, a pool
        whose connections go to the master the sentinels name now (after a failover, the
        new one), and `server` is only a label."""
        options = dict(self._pool_options)
        sentinels = options.pop("sentinels", None)
        if not sentinels:
            return self._pool_class.from_url(server, **options)
        master = options.pop("sentinel_master")
        manager = Sentinel(
            [tuple(address) for address in sentinels],
            sentinel_kwargs={"socket_connect_timeout": 1, "socket_timeout": 1},
        )
        return SentinelConnectionPool(master, manager, **options)


class SharedPoolRedisCache(RedisCache):
    """Django's Redis cache backend using `SharedPoolRedisCacheClient`."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient

    def count_hit(self, key: str, period: int, hits: int = 1) -> tuple[int, float]:
        """See `count_hit`: INCRBY, EXPIRE NX and PTTL in one round trip. INCRBY is atomic on
        its own; every hit repeats EXPIRE NX, so no counter outlives its window for
        want of a TTL even if a connection dropped between the two (no MULTI needed)."""
        key = self.make_and_validate_key(key)
        pipeline = self._cache.get_client(key, write=True).pipeline(transaction=False)
        pipeline.incr(key, hits)
        pipeline.expire(key, period, nx=True)
        pipeline.pttl(key)
        count, _, ttl_ms = pipeline.execute()
        return count, max(ttl_ms, 0) / 1000


# KEYS[1]: the count; ARGV: delta, ttl (0: leave the TTL), limit (-1: none). A
# decrement of a missing key (expired) changes nothing; an increment past the limit is
# undone. Returns the count, or -1 when the increment was refused, or nil (missing).
_ADD_TO_COUNT = """
local delta = tonumber(ARGV[1])
if delta < 0 and redis.call('EXISTS', KEYS[1]) == 0 then return false end
local count = redis.call('INCRBY', KEYS[1], delta)
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
local limit = tonumber(ARGV[3])
if delta > 0 and limit >= 0 and count > limit then
    redis.call('DECRBY', KEYS[1], delta)
    return -1
end
return count
"""


def _add_to_count_redis(
    cache: SharedPoolRedisCache, key: str, delta: int, ttl: int, limit: int | None
) -> int | None:
    key = cache.make_and_validate_key(key)
    client = cache._cache.get_client(key, write=True)
    return client.eval(_ADD_TO_COUNT, 1, key, delta, ttl, -1 if limit is None else limit)


def add_to_count(
    cache: BaseCache, key: str, delta: int, *, ttl: int = 0, limit: int | None = None
) -> int | None:
    """Add `delta` to the count at `key` and return the new count.

    `delta > 0`: the key is created at 0 if missing and its TTL set to `ttl` seconds;
    with `limit`, a count that would pass it is left as it was and -1 is returned.
    `delta < 0`: a missing key (expired) stays missing and None is returned; the TTL
    is left alone. One atomic round trip on `SharedPoolRedisCache`; elsewhere (tests,
    development without Redis) the cache's add / incr / touch. Pass the backend
    (`caches["default"]`), not the `cache` proxy, which is no `SharedPoolRedisCache`.
    """
    if isinstance(cache, SharedPoolRedisCache):
        return _add_to_count_redis(cache, key, delta, ttl, limit)
    if delta < 0:
        try:
            return cache.decr(key, -delta)
        except ValueError:
            return None
    cache.add(key, 0, ttl or None)
    count = cache.incr(key, delta)
    if ttl:
        cache.touch(key, ttl)
    if limit is not None and count > limit:
        cache.decr(key, delta)
        return -1
    return count


# Thread-sensitive `sync_to_async` (what Django's `cache.a*` methods use) runs every such
# call of the process on one thread: a connect storm queued each socket's counter
# updates behind every other socket's (bench/idle_sockets.py). These are independent
# calls on a thread-safe client, so any executor thread will do.
aadd_to_count = sync_to_async(add_to_count, thread_sensitive=False)


def count_hit(cache: BaseCache, key: str, period: int, hits: int = 1) -> tuple[int, float]:
    """Count `hits` hits (one request, or a GraphQL operation's mutations) on `key` in a
    window of `period` seconds; returns (hits in the window so far, seconds until the
    window ends).

    On Redis (`SharedPoolRedisCache`) the window starts at the key's first hit; on other
    backends (development without Redis) windows are aligned to multiples of `period`.
    """
    if isinstance(cache, SharedPoolRedisCache):
        return cache.count_hit(key, period, hits)
    now = time.time()
    start = now - now % period
    window_key = f"{key}:{int(start)}"
    cache.add(window_key, 0, period)
    return cache.incr(window_key, hits), start + period - now
